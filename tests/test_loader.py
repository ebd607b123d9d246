"""The database is lossless: every envelope line is a row and the log can be rebuilt exactly."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import corpus_logs, log_id

from tldb import db as dbmod
from tldb import pipeline
from tldb.loader import build_database
from tldb.reader import GLOG
from tldb.rebuild import log_bytes


def envelope_lines(path) -> int:
    """Independent count: non-empty lines, not TAB-indented, that carry a glog prefix."""
    count = 0
    for raw in path.read_bytes().split(b"\n"):
        line = raw.rstrip(b"\r")
        if line and not line.startswith(b"\t") and GLOG.search(line.decode(errors="replace")):
            count += 1
    return count


@pytest.mark.parametrize("path", corpus_logs(), ids=log_id)
def test_corpus_log_is_stored_losslessly(path, tmp_path):
    target = tmp_path / "t.db"
    build_database([path], target)
    db = dbmod.open_readonly(target)
    rows = db.conn.execute("SELECT count(*) FROM envelopes").fetchone()[0]
    assert rows == envelope_lines(path)
    assert b"".join(log_bytes(db, 1)) == path.read_bytes()
    for text, md5 in db.conn.execute("SELECT text, md5 FROM payloads"):
        assert hashlib.md5(text.encode()).hexdigest() == md5


def _dump(path) -> list:
    db = dbmod.open_readonly(path)
    tables = [r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return [
        (t, db.conn.execute(f"SELECT * FROM [{t}] ORDER BY 1, 2").fetchall())
        for t in sorted(tables)
        if t not in ("sqlite_stat1",)
    ]


def test_reloading_gives_the_same_database(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "comp_metrics.log"
    build_database([log], tmp_path / "a.db")
    build_database([log], tmp_path / "a.db")
    build_database([log], tmp_path / "b.db")
    assert _dump(tmp_path / "a.db") == _dump(tmp_path / "b.db")


def _processes_reading(path) -> list[int]:
    """Live processes with path on their command line (zombies do not count)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(path).encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def test_killed_load_leaves_no_database(corpus, tmp_path):
    """SIGKILL mid-load: the target never appears half-written; a re-run succeeds."""
    big = tmp_path / "big.log"
    unit = (corpus / "tlparse-tests" / "inputs" / "cache_hit_miss.log").read_bytes()
    big.write_bytes(unit * 40)
    assert big.stat().st_size >= pipeline.MIN_PIPELINE_BYTES  # the reader process is tested too
    target = tmp_path / "k.db"
    proc = subprocess.Popen([sys.executable, "-m", "tldb", "load", str(big), "--db", str(target)])
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Its reader process (a big log is read in a second one) must not outlive it.
    deadline = time.monotonic() + 10
    while _processes_reading(big) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_reading(big)
    if target.exists():  # the load won the race: it must then be complete
        dbmod.open_readonly(target).conn.close()
    build_database([big], target)
    assert dbmod.open_readonly(target).conn.execute("SELECT count(*) FROM logs").fetchone()[0] == 1


def test_odd_bytes_rebuild_exactly(tmp_path, log_writer):
    """Mixed line endings, blank lines (inside payloads too), bad UTF-8, junk, no final newline."""
    log_writer.add({"artifact": {"name": "a", "encoding": "string"}}, payload="p1\np2\np3")
    log_writer.add({"chromium_event": {}}, payload='{"name": "x"}')
    lines = [line.encode() for line in log_writer.lines]
    lines.insert(2, b"")  # a blank line inside the first payload
    lines.append(b"not a glog line \xff\xfe")
    lines.append(b"\tan orphan payload line")
    endings = [b"\n", b"\r\n", b"\r\n", b"\n", b"\r\n", b"\n", b"\n", b"\r\n"]
    data = b"".join(line + end for line, end in zip(lines, endings, strict=False))
    data += b'V0516 11:47:27.901000 1 x.py:9] {"chromium_event": {}}'
    log = tmp_path / "odd.log"
    log.write_bytes(data)
    build_database([log], tmp_path / "odd.db")
    db = dbmod.open_readonly(tmp_path / "odd.db")
    assert b"".join(log_bytes(db, 1)) == data
