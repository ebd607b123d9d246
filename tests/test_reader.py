"""The reader counts exactly what tlparse counts, on every log of tests/data, on damaged logs
written here, on every corpus log (extended suite), and never crashes."""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import LogWriter, corpus_logs, data_logs, data_path, log_id, run_tldb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robustness import CASES

from tldb.reader import BAD_JSON, BAD_TYPE, INTERN, OK, OTHER_RANK, Envelope, RawLine, Reader

STATS_LINE = re.compile(r"Stats \{[^}]*\}")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def damaged_log(path) -> bytes:
    """What cut, edited and interleaved logs hold, as tlparse's corrupted-JSON input does: a
    chromium payload with a line deleted, an envelope cut mid-JSON, a line without a glog
    prefix, a blank line inside a payload, guards that are not JSON, an unknown kind, a
    field of the wrong type, another rank's envelope and the string table."""
    writer = LogWriter()
    writer.add({"str": ["/src/model.py", 0]})
    writer.add({"dynamo_start": {"stack": []}, "frame_id": 0, "frame_compile_id": 0, "attempt": 0})
    writer.add({"chromium_event": {}}, '{"name": "a",\n "ph": "B",\n "ts": 1.5}')
    del writer.lines[-2]  # the payload's middle line: its md5 no longer matches
    writer.raw('V0516 11:47:27.901000 1234 torch/_dynamo/x.py:1] {"chromium_event": {"na')
    writer.raw("Traceback (most recent call last):")
    writer.add({"artifact": {"name": "a", "encoding": "string"}}, "x\ny")
    writer.lines.insert(len(writer.lines) - 1, "")
    writer.add({"dynamo_guards": {}, "frame_id": 0, "frame_compile_id": 0}, "not json")
    writer.add({"brand_new_kind": {}, "frame_id": 0, "frame_compile_id": 0, "attempt": 0})
    writer.add({"compilation_metrics": {"graph_op_count": "many"}, "frame_id": 0})
    writer.add({"chromium_event": {}, "rank": 0})
    writer.add({"chromium_event": {}, "rank": 1})
    return writer.write(path).read_bytes()


def _stats_of(path) -> str:
    with path.open("rb") as stream:
        reader = Reader(stream)
        for _ in reader:
            pass
    return reader.stats.tlparse_line()


def _tlparse_stats(path, oracle, tmp_path) -> str:
    reference = subprocess.run(
        [*oracle, str(path), "-o", str(tmp_path / "ref"), "--overwrite", "--no-browser"],
        capture_output=True,
        text=True,
    )
    expected = STATS_LINE.search(reference.stderr)
    assert expected is not None, reference.stderr
    return expected.group(0)


def _assert_stats_equal_tlparse(path, oracle, tmp_path) -> None:
    assert _stats_of(path) == _tlparse_stats(path, oracle, tmp_path)


@pytest.mark.parametrize("name", data_logs())
def test_stats_equal_tlparse(name, oracle, tmp_path):
    _assert_stats_equal_tlparse(data_path(name), oracle, tmp_path)


def test_stats_of_a_damaged_log_equal_tlparse(oracle, tmp_path):
    """The reader's counts, and the whole load's (the guards parser counts its failures)."""
    log = tmp_path / "damaged.log"
    damaged_log(log)
    expected = _tlparse_stats(log, oracle, tmp_path)
    assert "fail_payload_md5: 1" in expected and "fail_dynamo_guards_json: 1" in expected
    assert _stats_of(log) == expected.replace(" fail_dynamo_guards_json: 1,", "")
    loaded = run_tldb("load", str(log), "--db", str(tmp_path / "t.db"))
    assert loaded.returncode == 0, loaded.stderr
    assert STATS_LINE.search(loaded.stderr).group(0) == expected


#: Damaged inputs of the robustness tests whose lines are all UTF-8: tlparse drops undecodable
#: lines uncounted and then aborts, where tldb keeps them (README, differences from tlparse).
DAMAGED_UTF8 = sorted(name for name, data in CASES.items() if _is_utf8(data))


@pytest.mark.parametrize("name", DAMAGED_UTF8)
def test_stats_of_malformed_input_equal_tlparse(name, oracle, tmp_path):
    log = tmp_path / f"{name}.log"
    log.write_bytes(CASES[name])
    _assert_stats_equal_tlparse(log, oracle, tmp_path)


@pytest.mark.extended
@pytest.mark.parametrize("path", corpus_logs(), ids=log_id)
def test_stats_of_corpus_log_equal_tlparse(path, oracle, tmp_path):
    _assert_stats_equal_tlparse(path, oracle, tmp_path)


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
def test_chunk_boundaries_do_not_matter(tmp_path, monkeypatch, chunk):
    """Payload blocks and lines cut by read boundaries parse exactly as when read whole."""
    import tldb.reader as reader_module

    damaged = tmp_path / "damaged.log"
    crlf = tmp_path / "crlf.log"
    crlf.write_bytes(damaged_log(damaged).replace(b"\n", b"\r\n"))
    logs = [damaged, crlf]
    logs += [data_path(f"torch213/{name}.log") for name in ("export", "draft_export", "regional")]
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
