"""Hostile, broken and odd inputs: every line is accounted for, nothing escapes, exit 0."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib

import pytest
from conftest import run_tldb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tldb import db as dbmod
from tldb.loader import build_database
from tldb.paths import safe_relpath
from tldb.reader import Envelope, RawLine, Reader
from tldb.rebuild import log_bytes

HEADER = "V0516 11:47:27.901000 1234 torch/x.py:1] "


def account(data: bytes):
    """Read bytes; check each physical line is exactly one of: envelope, payload, blank, rejected."""
    import io

    reader = Reader(io.BytesIO(data))
    records = list(reader)
    envelopes = [r for r in records if isinstance(r, Envelope)]
    raw = [r for r in records if isinstance(r, RawLine)]
    payload_lines = sum(e.payload_lines for e in envelopes)
    blank = sum(1 for r in raw if r.kind == "blank")
    rejected = sum(1 for r in raw if r.kind == "fail_glog")
    assert reader.shape.lines == len(envelopes) + payload_lines + blank + rejected
    assert reader.stats.fail_glog == rejected
    return reader, envelopes, raw


def png_bytes() -> bytes:
    raw = b"\x00\xff\x00\x00" * 4
    chunk = zlib.compress(raw)
    return b"\x89PNG\r\n\x1a\n" + len(chunk).to_bytes(4, "big") + b"IDAT" + chunk + b"\x00" * 8


CASES = {
    "empty": b"",
    "png": png_bytes(),
    "plain_text": b"hello world\nthis is not a trace\n",
    "truncated_last_line": (HEADER + '{"chromium_event": {}, "has_payload": "x"}\n\t{"na').encode(),
    "payload_cut_midway": (
        HEADER + '{"artifact": {"name": "a", "encoding": "string"}, '
        '"has_payload": "0123456789abcdef0123456789abcdef"}\n\tfirst\n'
    ).encode(),
    "not_an_object": (HEADER + "[1, 2, 3]\n" + HEADER + '"text"\n').encode(),
    "nul_bytes": (HEADER + '{"artifact": {"name": "a\\u0000b", "encoding": "string"}}\n').encode()
    + b"\x00\x00\n",
    "invalid_utf8": HEADER.encode() + b'{"chromium_event": {}}\n\xc3\x28 broken\n',
    "symbolic_sizes_as_strings": (
        HEADER + '{"describe_storage": {"id": 1, "describer_id": 0, "size": "s0*4"}}\n'
    ).encode(),
    "filename_id_minus_one": (
        HEADER + '{"dynamo_start": {"stack": [{"filename": -1, "line": 3, "name": "f"}]}}\n'
    ).encode(),
    "interleaved_ranks": "".join(
        HEADER + json.dumps({"chromium_event": {}, "rank": r}) + "\n" for r in (0, 1, 0, 2)
    ).encode(),
    "unknown_kinds": (HEADER + '{"brand_new_kind": {"x": 1}, "frame_id": 0}\n').encode(),
    "nan_in_envelope": (HEADER + '{"compilation_metrics": {"start_time": NaN}}\n').encode(),
    "crlf_only": b"\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_kept_and_reported(name, tmp_path):
    data = CASES[name]
    reader, envelopes, _ = account(data)
    log = tmp_path / f"{name}.log"
    log.write_bytes(data)
    out = tmp_path / "out"
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "index.html").is_file()
    db = dbmod.open_readonly(out / "trace.db")
    assert db.conn.execute("SELECT count(*) FROM envelopes").fetchone()[0] == len(envelopes)
    assert b"".join(log_bytes(db, 1)) == data  # nothing lost, byte for byte
    strict = run_tldb("report", str(log), "-o", str(out), "--no-browser", "--overwrite", "--strict")
    failures = reader.stats.strict_failures()
    assert strict.returncode == (1 if failures else 0), strict.stderr


def test_hundred_megabyte_line(tmp_path):
    log = tmp_path / "huge.log"
    payload = "x" * (100 << 20)
    import hashlib

    digest = hashlib.md5(payload.encode()).hexdigest()
    with log.open("w") as f:
        f.write(
            HEADER
            + json.dumps({"artifact": {"name": "big", "encoding": "string"}, "has_payload": digest})
            + "\n\t"
            + payload
            + "\n"
        )
        f.write(HEADER + json.dumps({"chromium_event": {}, "note": "y" * (100 << 20)}) + "\n")
    build_database([log], tmp_path / "h.db")
    db = dbmod.open_readonly(tmp_path / "h.db")
    assert db.conn.execute("SELECT max(size) FROM payloads").fetchone()[0] == 100 << 20
    assert db.conn.execute("SELECT count(*) FROM envelopes").fetchone()[0] == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/etc/passwd", "etc/passwd"),
        ("../../x", "x"),
        ("a/./../b", "a/b"),
        ("..", "_"),
        ("", "_"),
        ("nul\x00name", "nul_name"),
        ("dev/../../../../dev/null", "dev/dev/null"),
    ],
)
def test_names_become_confined_relative_paths(name, expected):
    assert safe_relpath(name) == expected


def test_log_names_never_escape_the_output_folder(tmp_path, log_writer):
    cid = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
    outside = tmp_path / "outside"
    for name in (f"{outside}/abs", "../../escape", "x/../../../up", "a" * 600):
        log_writer.add({"dump_file": {"name": name}, **cid}, payload="x = 1")
        log_writer.add({"artifact": {"name": name, "encoding": "string"}, **cid}, payload="p")
        log_writer.add({"graph_dump": {"name": name}, **cid}, payload="g")
    log_writer.add({"link": {"name": "l", "url": "x"}, "has_payload": "../../../../pwned"})
    log_writer.lines.append("\tpayload of the link")
    log = log_writer.write(tmp_path / "paths.log")
    out = tmp_path / "deep" / "out"
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()}
    allowed = {log.resolve()} | {p for p in written if out.resolve() in p.parents}
    assert written == allowed
    assert not outside.exists()


def test_concurrent_loads_of_one_database(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "cache_hit_miss.log"
    target = tmp_path / "same.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tldb", "load", str(log), "--db", str(target)],
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    codes = [p.wait() for p in procs]
    assert codes == [0, 0, 0]
    db = dbmod.open_readonly(target)
    assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.conn.execute("SELECT count(*) FROM logs").fetchone()[0] == 1
    assert not list(tmp_path.glob(".same.db.tmp-*"))


def _corpus_lines(corpus) -> list[bytes]:
    lines: list[bytes] = []
    for name in ("comp_metrics.log", "export.log", "artifacts.log"):
        lines.extend((corpus / "tlparse-tests" / "inputs" / name).read_bytes().split(b"\n")[:400])
    return lines


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_corpus_lines_never_crash(corpus, data):
    lines = _corpus_lines(corpus)
    picked = data.draw(st.lists(st.sampled_from(lines), min_size=1, max_size=40))
    mutated = []
    for line in picked:
        action = data.draw(st.sampled_from(["keep", "cut", "flip", "insert", "drop_tab", "crlf"]))
        if action == "cut" and line:
            line = line[: data.draw(st.integers(0, len(line)))]
        elif action == "flip" and line:
            i = data.draw(st.integers(0, len(line) - 1))
            line = line[:i] + bytes([data.draw(st.integers(0, 255))]) + line[i + 1 :]
        elif action == "insert":
            line = line + data.draw(st.binary(max_size=8))
        elif action == "drop_tab":
            line = line.lstrip(b"\t")
        elif action == "crlf":
            line = line + b"\r"
        mutated.append(line)
    blob = b"\n".join(mutated) + data.draw(st.sampled_from([b"", b"\n"]))
    account(blob)
