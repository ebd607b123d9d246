"""Hostile, broken and odd inputs: every line is accounted for, nothing escapes, exit 0.

The expected counters of each hostile case are written down by hand from tlparse 0.4.3's rules
(reasoned out next to each case), never taken from tldb's reader.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import subprocess
import sys

import pytest
from conftest import data_path, run_tldb
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


#: A 1x1 PNG, spelled out so that its line structure is known: "\x89PNG\r\n" (a CRLF line,
#: invalid UTF-8), "\x1a\n" (valid), then the chunks with no newline (invalid UTF-8: 0x9c).
PNG = (
    b"\x89PNG\r\n\x1a\n"
    b"\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)

CASES = {
    "empty": b"",
    "png": PNG,
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

#: Per case: (envelope rows, tlparse's Stats line, tldb's own counters line or None,
#: exit status with --strict). --strict fails on fail_glog, fail_json, fail_payload_md5,
#: other_rank, fail_dynamo_guards_json and fail_parser (not on unknown fields nor blank lines).
EXPECTED = {
    # No line at all.
    "empty": (0, "Stats { }", None, 0),
    # Three lines, none with a glog prefix; the first and the last are not UTF-8.
    "png": (0, "Stats { fail_glog: 3 }", "tldb: invalid_utf8: 2", 1),
    # Two lines without a glog prefix.
    "plain_text": (0, "Stats { fail_glog: 2 }", None, 1),
    # A valid envelope whose payload `{"na` cannot have the md5 "x" (not even hex).
    "truncated_last_line": (1, "Stats { ok: 1, fail_payload_md5: 1 }", None, 1),
    # The payload "first" does not hash to the declared md5.
    "payload_cut_midway": (1, "Stats { ok: 1, fail_payload_md5: 1 }", None, 1),
    # Syntactically valid JSON that is no object: not an Envelope (1), and not an object for
    # raw.jsonl either (1 more), on each of the two lines.
    "not_an_object": (2, "Stats { fail_json: 4 }", None, 1),
    # A good artifact envelope (a NUL inside a JSON string is fine), then a line of NULs
    # without a glog prefix.
    "nul_bytes": (1, "Stats { ok: 1, fail_glog: 1 }", None, 1),
    # A good envelope, then a non-UTF-8 line without a glog prefix.
    "invalid_utf8": (1, "Stats { ok: 1, fail_glog: 1 }", "tldb: invalid_utf8: 1", 1),
    # Well-formed JSON, wrongly typed for tlparse (size is a u64): fail_json once.
    "symbolic_sizes_as_strings": (1, "Stats { fail_json: 1 }", None, 1),
    # A frame's filename index is a u32 for tlparse: -1 is wrongly typed, fail_json once.
    "filename_id_minus_one": (1, "Stats { fail_json: 1 }", None, 1),
    # The first ranked envelope fixes the rank (0): ranks 1 and 2 are other_rank.
    "interleaved_ranks": (4, "Stats { ok: 2, other_rank: 2 }", None, 1),
    # An unknown kind is accepted (ok) and counted as an unknown field, which --strict allows.
    "unknown_kinds": (1, "Stats { ok: 1, unknown: 1 }", None, 0),
    # NaN is not JSON: the envelope fails, and so does the generic re-parse: fail_json twice.
    "nan_in_envelope": (1, "Stats { fail_json: 2 }", None, 1),
    # Two empty CRLF lines: blank lines, which tlparse skips without counting.
    "crlf_only": (0, "Stats { }", "tldb: blank_lines: 2", 0),
}


def stats_lines(stderr: str) -> tuple[str, str | None]:
    """The `Stats { ... }` line and tldb's own `tldb: ...` counters line (None when absent)."""
    stats = [line for line in stderr.splitlines() if line.startswith("Stats {")]
    extra = [line for line in stderr.splitlines() if line.startswith("tldb: ")]
    assert len(stats) == 1 and len(extra) <= 1, stderr
    return stats[0], (extra[0] if extra else None)


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_kept_and_reported(name, tmp_path):
    data = CASES[name]
    rows, stats, extra, strict_status = EXPECTED[name]
    account(data)
    log = tmp_path / f"{name}.log"
    log.write_bytes(data)
    out = tmp_path / "out"
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert stats_lines(result.stderr) == (stats, extra)
    assert (out / "index.html").is_file()
    db = dbmod.open_readonly(out / "trace.db")
    assert db.conn.execute("SELECT count(*) FROM envelopes").fetchone()[0] == rows
    assert b"".join(log_bytes(db, 1)) == data  # nothing lost, byte for byte
    strict = run_tldb("report", str(log), "-o", str(out), "--no-browser", "--overwrite", "--strict")
    assert strict.returncode == strict_status, strict.stderr
    assert "Traceback" not in strict.stderr
    if strict_status:  # the report is still written, and the error names the counters
        assert f"--strict: the log has problems: {stats}" in strict.stderr
        assert (out / "index.html").is_file()


def test_hundred_megabyte_line(tmp_path):
    log = tmp_path / "huge.log"
    payload = "x" * (100 << 20)
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
    (result,) = build_database([log], tmp_path / "h.db")
    assert (result.stats.ok, result.stats.fail_payload_md5) == (2, 0)  # its md5 is right
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
    """Absolute names, `..` climbs and over-long names, in every kind that names a file.

    The output folder is five levels below tmp_path, deeper than any name here climbs (at
    most four levels above payloads/), so that a write outside the output folder lands in
    tmp_path, which is scanned whole.
    """
    cid = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
    outside = tmp_path / "outside"
    for name in (f"{outside}/abs", "../../escape", "x/../../../up", "a" * 600):
        log_writer.add({"dump_file": {"name": name}, **cid}, payload="x = 1")
        log_writer.add({"artifact": {"name": name, "encoding": "string"}, **cid}, payload="p")
        log_writer.add({"graph_dump": {"name": name}, **cid}, payload="g")
    log_writer.add({"link": {"name": "l", "url": "x"}, "has_payload": "../../../../pwned"})
    log_writer.lines.append("\tpayload of the link")
    log = log_writer.write(tmp_path / "paths.log")
    out = tmp_path / "l1" / "l2" / "l3" / "l4" / "out"
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()}
    inside = {p for p in written if out.resolve() in p.parents}
    assert written - inside == {log.resolve()}
    assert not outside.exists()
    # The link's payload is saved (tlparse: payloads/{has_payload}.txt), under a tame name.
    saved = out / "payloads" / ".._.._.._.._pwned.txt"
    assert saved.read_text() == "payload of the link"


def test_concurrent_loads_of_one_database(tmp_path):
    log = data_path("torch213/cache_2.log")
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
    assert b"".join(log_bytes(db, 1)) == log.read_bytes()
    assert not list(tmp_path.glob(".same.db.tmp-*"))


#: Real torch 2.13 lines to mutate: envelopes of many kinds, payloads, md5s, string tables.
FUZZ_LOGS = ("dynamo", "export", "cache_1")


@functools.cache
def _fixture_lines() -> list[bytes]:
    lines: list[bytes] = []
    for name in FUZZ_LOGS:
        lines.extend(data_path(f"torch213/{name}.log").read_bytes().split(b"\n")[:400])
    return lines


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_log_lines_never_crash(data):
    lines = _fixture_lines()
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
