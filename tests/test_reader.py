"""The reader counts exactly what tlparse counts, on every corpus log, and never crashes."""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import corpus_logs, log_id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tldb.reader import BAD_JSON, BAD_TYPE, INTERN, OK, OTHER_RANK, Envelope, RawLine, Reader

STATS_LINE = re.compile(r"Stats \{[^}]*\}")


@pytest.mark.parametrize("path", corpus_logs(), ids=log_id)
def test_stats_equal_tlparse(path, oracle, tmp_path):
    with path.open("rb") as stream:
        reader = Reader(stream)
        for _ in reader:
            pass
    reference = subprocess.run(
        [*oracle, str(path), "-o", str(tmp_path / "ref"), "--overwrite", "--no-browser"],
        capture_output=True,
        text=True,
    )
    expected = STATS_LINE.search(reference.stderr)
    assert expected is not None, reference.stderr
    assert reader.stats.tlparse_line() == expected.group(0)


def _read(path):
    with path.open("rb") as stream:
        reader = Reader(stream)
        records = list(reader)
    return reader, records


def test_statuses_and_payloads(tmp_path, log_writer):
    path = (
        log_writer.add({"str": ["/a.py", 0]})
        .add(
            {"dynamo_output_graph": {}, "frame_id": 0, "frame_compile_id": 0, "attempt": 0},
            payload="graph line 1\ngraph line 2",
        )
        .add({"artifact": {"name": "x", "encoding": "string"}}, payload="p", bad_md5=True)
        .add({"compilation_metrics": {"graph_op_count": 1.5}})
        .raw("V0516 11:47:27.901000 1234 x.py:1] {not json")
        .raw("not a glog line")
        .write(tmp_path / "t.log")
    )
    reader, records = _read(path)
    envelopes = [r for r in records if isinstance(r, Envelope)]
    assert [e.status for e in envelopes] == [INTERN, OK, OK, BAD_TYPE, BAD_JSON]
    assert envelopes[1].payload == "graph line 1\ngraph line 2"
    assert envelopes[1].payload_lines == 2
    assert envelopes[2].payload_md5 != envelopes[2].has_payload
    assert reader.strings == {0: "/a.py"}
    stats = reader.stats
    assert (stats.ok, stats.fail_json, stats.fail_glog, stats.fail_payload_md5) == (2, 3, 1, 1)
    assert [r.kind for r in records if isinstance(r, RawLine)] == ["fail_glog"]


def test_rank_filter_rejects_unranked_after_first_rank(tmp_path, log_writer):
    path = (
        log_writer.add({"chromium_event": {}})
        .add({"chromium_event": {}, "rank": 1})
        .add({"chromium_event": {}})
        .add({"chromium_event": {}, "rank": 2})
        .write(tmp_path / "r.log")
    )
    reader, records = _read(path)
    assert [r.status for r in records] == [OK, OK, OTHER_RANK, OTHER_RANK]
    assert reader.expected_rank == 1


def test_blank_lines_inside_payload_are_skipped_and_kept(tmp_path, log_writer):
    log_writer.add({"artifact": {"name": "a", "encoding": "string"}}, payload="x\ny")
    log_writer.lines.insert(2, "")
    path = log_writer.write(tmp_path / "b.log")
    reader, records = _read(path)
    envelope = next(r for r in records if isinstance(r, Envelope))
    assert envelope.payload == "x\ny"
    assert [r.line for r in records if isinstance(r, RawLine) and r.kind == "blank"] == [3]
    assert reader.stats.fail_payload_md5 == 0


def test_crlf_log_keeps_md5_and_shape(tmp_path, log_writer):
    log_writer.add({"artifact": {"name": "a", "encoding": "string"}}, payload="one\ntwo")
    path = tmp_path / "crlf.log"
    path.write_bytes(("\r\n".join(log_writer.lines) + "\r\n").encode())
    reader, _ = _read(path)
    assert reader.stats.fail_payload_md5 == 0
    assert reader.shape.eol == "\r\n"


def test_invalid_utf8_is_counted_not_fatal(tmp_path):
    path = tmp_path / "bin.log"
    path.write_bytes(b'V0516 11:47:27.901000 1 x.py:1] {"chromium_event": {}}\n\xff\xfe junk\n')
    reader, records = _read(path)
    assert reader.stats.invalid_utf8 == 1
    assert reader.stats.ok == 1
    assert any(isinstance(r, RawLine) and r.kind == "bytes" for r in records)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_chunk_boundaries_do_not_matter(corpus, monkeypatch, chunk):
    """Payload blocks and lines cut by read boundaries parse exactly as when read whole."""
    import tldb.reader as reader_module

    logs = [
        corpus / "tlparse-tests" / "inputs" / name
        for name in ("chromium_events.log", "export.log", "simple_corrupted_json.log")
    ]
    logs.append(
        corpus
        / "tlparse-tests"
        / "inputs"
        / "multi_rank_logs"
        / "dedicated_log_torch_trace_rank_2.log"
    )
    for log in logs:
        whole_reader, whole = _read(log)
        monkeypatch.setattr(reader_module, "CHUNK", chunk)
        small_reader, small = _read(log)
        monkeypatch.setattr(reader_module, "CHUNK", 8 << 20)
        assert small_reader.stats == whole_reader.stats
        assert small_reader.shape == whole_reader.shape
        assert [(type(r), r.line) for r in small] == [(type(r), r.line) for r in whole]
        assert [r.payload for r in small if isinstance(r, Envelope)] == [
            r.payload for r in whole if isinstance(r, Envelope)
        ]


_HEADER = b"V0516 11:47:27.901000 1234 torch/x.py:1] "
_PIECES = [
    _HEADER + b'{"artifact": {"name": "a", "encoding": "string"}, "has_payload": "x"}',
    _HEADER + b'{"chromium_event": {}, "has_payload": "y"}',
    _HEADER + b'{"dynamo_start": {}}',
    b"\tpayload line",
    b"\t",
    b"\ttab\tinside\r",
    b"",
    b"\r",
    b"not a trace line",
]


def _records(data: bytes, monkeypatch, fast: bool, chunk: int) -> list:
    import io

    import tldb.reader as reader_module

    monkeypatch.setattr(reader_module, "CHUNK", chunk)
    if not fast:
        monkeypatch.setattr(reader_module.Reader, "_tab_run_end", lambda self: None)
    reader = Reader(io.BytesIO(data))
    records = [
        (type(r).__name__, *(getattr(r, f) for f in r.__slots__ if f != "meta")) for r in reader
    ]
    monkeypatch.undo()
    return [records, reader.stats, reader.shape]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.sampled_from(_PIECES), st.sampled_from([b"\n", b"\r\n"])), max_size=25),
    st.booleans(),
    st.sampled_from([3, 16, 1 << 20]),
)
def test_usual_payload_path_agrees_with_the_general_rules(monkeypatch, lines, final, chunk):
    """The one-search path for plain TAB blocks gives exactly what the line rules give."""
    data = b"".join(text + end for text, end in lines)
    if not final and data:
        data = data[: -len(lines[-1][1])]
    fast = _records(data, monkeypatch, True, chunk)
    general = _records(data, monkeypatch, False, chunk)
    assert fast == general
