"""The database is lossless: every envelope line is a row and the log can be rebuilt exactly;
a load killed midway leaves no database that looks complete."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import corpus_logs, data_logs, data_path, log_id

from tldb import db as dbmod
from tldb import pipeline
from tldb.errors import TldbError
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


def assert_lossless(path: Path, target: Path) -> None:
    build_database([path], target)
    db = dbmod.open_readonly(target)
    rows = db.conn.execute("SELECT count(*) FROM envelopes").fetchone()[0]
    assert rows == envelope_lines(path)
    assert b"".join(log_bytes(db, 1)) == path.read_bytes()
    for text, md5 in db.conn.execute("SELECT text, md5 FROM payloads"):
        assert hashlib.md5(text.encode()).hexdigest() == md5


@pytest.mark.parametrize("name", data_logs())
def test_fixture_log_is_stored_losslessly(name, tmp_path):
    assert_lossless(data_path(name), tmp_path / "t.db")


@pytest.mark.extended
@pytest.mark.parametrize("path", corpus_logs(), ids=log_id)
def test_corpus_log_is_stored_losslessly(path, tmp_path):
    assert_lossless(path, tmp_path / "t.db")


def _dump(path) -> list:
    db = dbmod.open_readonly(path)
    tables = [r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return [
        (t, db.conn.execute(f"SELECT * FROM [{t}] ORDER BY 1, 2").fetchall())
        for t in sorted(tables)
        if t not in ("sqlite_stat1",)
    ]


def test_reloading_gives_the_same_database(tmp_path):
    log = data_path("torch213/dynamo.log")
    build_database([log], tmp_path / "a.db")
    build_database([log], tmp_path / "a.db")
    build_database([log], tmp_path / "b.db")
    assert _dump(tmp_path / "a.db") == _dump(tmp_path / "b.db")


def _children(pid: int) -> list[int]:
    """Live child processes of pid (zombies do not count)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _state(pid: int) -> str | None:
    """The process state letter (R, S, T, Z...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    """Poll until condition() holds; fail naming `what` after `seconds` (a hang, not a race)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.002)


def assert_nothing_looks_complete(folder: Path) -> None:
    """No database under folder opens as a finished load."""
    for path in folder.rglob("*"):
        if path.is_file() and dbmod.is_database(path):
            with pytest.raises(TldbError):
                dbmod.open_readonly(path).conn.close()


#: `tldb load LOG --db DB` whose log stream comes from FIFO (LOG itself is only stat'ed):
#: only the reading is replaced, the database is written by the real loader.
FIFO_DRIVER = """
import sys
from tldb import pipeline
from tldb.cli import cli

fifo, log, target = sys.argv[1:]
pipeline.open_log = lambda path: open(fifo, "rb")
cli(["load", log, "--db", target])
"""


def _write_into_fifo(fifo: Path, data: bytes, proc: subprocess.Popen) -> int:
    """Write data into the FIFO once the load opens it; returns the open descriptor when the
    load has taken all but what the pipe buffers. The FIFO stays open: the load never sees
    the end of its log."""
    fd = None

    def opened() -> bool:
        nonlocal fd
        assert proc.poll() is None, "the load ended before opening its log"
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            return False
        return True

    _wait_for(opened, "the load to open its log")
    os.set_blocking(fd, True)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return fd


def test_load_killed_midway_leaves_no_database(tmp_path):
    """SIGKILL while the log is being read (deterministic: the log is a FIFO whose end never
    comes): the target never appears, and what is left is not a complete-looking database."""
    unit = data_path("torch213/cache_1.log").read_bytes()
    log = tmp_path / "log.log"
    log.write_bytes(unit * 5)  # several of the reader's 2 MiB chunks
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    target = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", FIFO_DRIVER, str(fifo), str(log), str(target)],
        stderr=subprocess.PIPE,
    )
    fd = None
    try:
        fd = _write_into_fifo(fifo, log.read_bytes()[:-100], proc)
        building = list(tmp_path.glob(".k.db.tmp-*"))
        assert len(building) == 1  # the load is at work in its temporary file
        assert not target.exists()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if fd is not None:
            os.close(fd)
    assert not target.exists()
    assert_nothing_looks_complete(tmp_path)
    build_database([log], target)  # a re-run succeeds beside the leftover
    assert dbmod.open_readonly(target).conn.execute("SELECT count(*) FROM logs").fetchone()[0] == 1


def test_killed_pipelined_load_leaves_no_process_behind(tmp_path):
    """A big log is read by a second process. Stop that reader as soon as it exists: the load
    then cannot finish (it waits for the reader's records). Kill the load: the reader, let go
    on again, must die of it, and nothing looks like a complete database."""
    unit = data_path("torch213/cache_1.log").read_bytes()
    big = tmp_path / "big.log"
    big.write_bytes(unit * (pipeline.MIN_PIPELINE_BYTES // len(unit) + 1))
    assert big.stat().st_size >= pipeline.MIN_PIPELINE_BYTES
    target = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tldb", "load", str(big), "--db", str(target)],
        stderr=subprocess.PIPE,
    )
    reader: list[int] = []

    def reader_started() -> bool:
        assert proc.poll() is None, "the load ended before its reader process was seen"
        reader.extend(_children(proc.pid))
        return bool(reader)

    try:
        _wait_for(reader_started, "the reader process")
        os.kill(reader[0], signal.SIGSTOP)
        _wait_for(lambda: _state(reader[0]) == "T", "the reader to stop")
        assert not target.exists() and proc.poll() is None  # stopped before the load finished
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        os.kill(reader[0], signal.SIGCONT)
        _wait_for(lambda: _state(reader[0]) in (None, "Z"), "the reader to end")
    finally:
        for pid in [*reader, proc.pid]:
            if _state(pid) not in (None, "Z"):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    assert not target.exists()
    assert_nothing_looks_complete(tmp_path)


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


def test_new_databases_start_with_exactly_the_schema_the_sql_files_make(tmp_path):
    """Every database is a copy of one template built in a single transaction (each DDL
    statement committing on its own waited for the disk hundreds of times per process): the
    template must hold what running sql/*.sql one by one makes, object for object."""
    import sqlite3

    from tldb.resources import sql_file

    template = tmp_path / "template.db"
    template.write_bytes(dbmod._empty_database())
    reference = sqlite3.connect(":memory:")
    for name in dbmod.SQL_FILES:
        reference.executescript(sql_file(name))
    query = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
    made = sqlite3.connect(template).execute(query).fetchall()
    assert made == reference.execute(query).fetchall()
    assert {kind for kind, *_ in made} >= {"table", "index", "view"}
