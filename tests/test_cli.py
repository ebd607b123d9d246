"""Command-line behaviour: clear one-line errors, tlparse's output-folder rules, load stats."""

from __future__ import annotations

import ctypes
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from conftest import data_path, run_tldb
from tlparse_parity import run_reference
from torch213_log import envelopes

#: A real log for tests that need one, whatever it holds (torch 2.13, two Inductor compiles).
LOG = "torch213/cache_2.log"


def test_missing_input_is_one_line_error(tmp_path):
    result = run_tldb("report", str(tmp_path / "nope.log"), "-o", str(tmp_path / "o"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'nope.log'} is not a file"


def test_existing_output_needs_overwrite(tmp_path):
    log = data_path(LOG)
    out = tmp_path / "o"
    out.mkdir()
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 1
    assert "already exists; pass --overwrite" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    again = run_tldb("report", str(log), "-o", str(out), "--no-browser", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert (out / "trace.db").is_file()


def test_overwrite_leaves_only_the_new_report(tmp_path):
    log = data_path(LOG)
    out = tmp_path / "o"
    first = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert first.returncode == 0, first.stderr
    fresh = sorted(p.relative_to(out) for p in out.rglob("*"))
    (out / "stale.txt").write_text("from before")
    (out / "old_folder").mkdir()
    (out / "old_folder" / "f.txt").write_text("from before")
    again = run_tldb("report", str(log), "-o", str(out), "--no-browser", "--overwrite")
    assert again.returncode == 0, again.stderr
    # The old content was moved aside and deleted before the command returned.
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == fresh
    rerender = run_tldb(
        "report", str(out / "trace.db"), "-o", str(out), "--no-browser", "--overwrite"
    )
    assert rerender.returncode == 0, rerender.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == fresh


def test_overwrite_keeps_the_database_being_rendered(tmp_path):
    log = data_path(LOG)
    out = tmp_path / "o"
    (out / "keep").mkdir(parents=True)
    loaded = run_tldb("load", str(log), "--db", str(out / "keep" / "trace.db"))
    assert loaded.returncode == 0, loaded.stderr
    (out / "stale.txt").write_text("from before")
    result = run_tldb(
        "report", str(out / "keep" / "trace.db"), "-o", str(out), "--no-browser", "--overwrite"
    )
    assert result.returncode == 0, result.stderr
    assert (out / "keep" / "trace.db").is_file()
    assert not (out / "stale.txt").exists()
    assert (out / "index.html").is_file()


#: Linux capabilities that let root read any file (capability(7)).
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
PR_CAPBSET_DROP = 24


def _without_root_reads() -> None:
    """In a child before exec: drop the capabilities that let root ignore file permissions
    from the bounding set, so the command runs as root (same files, same Python) but obeys
    a file's mode like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.parametrize("command", ["load", "report"])
def test_unreadable_file(tmp_path, command):
    """A log its user may not read is a one-line error (as root: without the capabilities
    that bypass file modes)."""
    log = tmp_path / "secret.log"
    log.write_bytes(data_path("torch213/draft_export.log").read_bytes())
    log.chmod(0)
    out = tmp_path / "out"
    args = ["--db", str(out / "t.db")] if command == "load" else ["-o", str(out), "--no-browser"]
    result = subprocess.run(
        [sys.executable, "-m", "tldb", command, str(log), *args],
        capture_output=True,
        text=True,
        preexec_fn=_without_root_reads if os.geteuid() == 0 else None,
    )
    log.chmod(0o600)
    assert result.stderr.strip() == f"Error: cannot read {log}: Permission denied"
    assert result.returncode == 1
    assert not (out / "t.db").exists() and not (out / "trace.db").exists()


def test_load_prints_tlparse_stats(oracle, tmp_path, log_writer):
    """The Stats line of `tldb load` is tlparse's, on real logs (compared with the reference)
    and on a log written by hand (two envelopes, one payload with a wrong md5)."""
    for name in ("export", "draft_export", "cache_2"):
        log = data_path(f"torch213/{name}.log")
        result = run_tldb("load", str(log), "--db", str(tmp_path / f"{name}.db"))
        assert result.returncode == 0, result.stderr
        reference = run_reference(oracle, log, tmp_path / f"ref-{name}")
        theirs = [line for line in reference.stderr.splitlines() if line.startswith("Stats {")]
        ours = [line for line in result.stderr.splitlines() if line.startswith("Stats {")]
        assert ours == theirs and len(ours) == 1, name
    log_writer.add({"artifact": {"name": "a", "encoding": "string"}}, payload="right")
    log_writer.add({"artifact": {"name": "b", "encoding": "string"}}, payload="x", bad_md5=True)
    log = log_writer.write(tmp_path / "md5.log")
    result = run_tldb("load", str(log), "--db", str(tmp_path / "t.db"))
    assert result.returncode == 0, result.stderr
    assert "Stats { ok: 2, fail_payload_md5: 1 }" in result.stderr.splitlines()


def test_report_from_database_reparses_nothing(tmp_path):
    log = data_path(LOG)
    first = run_tldb("report", str(log), "-o", str(tmp_path / "a"), "--no-browser")
    assert first.returncode == 0, first.stderr
    second = run_tldb(
        "report", str(tmp_path / "a" / "trace.db"), "-o", str(tmp_path / "b"), "--no-browser"
    )
    assert second.returncode == 0, second.stderr
    for name in ("compile_directory.json", "raw.jsonl", "raw.log"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_raw_log_rebuilt_when_the_log_is_gone(tmp_path):
    log = tmp_path / "copy.log"
    log.write_bytes(data_path(LOG).read_bytes())
    assert run_tldb("load", str(log), "--db", str(tmp_path / "t.db")).returncode == 0
    original = log.read_bytes()
    log.unlink()
    result = run_tldb("report", str(tmp_path / "t.db"), "-o", str(tmp_path / "o"), "--no-browser")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "raw.log").read_bytes() == original


def test_database_from_another_schema_version_is_refused_clearly(tmp_path):
    log = data_path(LOG)
    assert run_tldb("load", str(log), "--db", str(tmp_path / "t.db")).returncode == 0
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    result = run_tldb("report", str(tmp_path / "t.db"), "-o", str(tmp_path / "o"), "--no-browser")
    assert result.returncode == 1
    assert "schema version 0" in result.stderr and "rebuild it" in result.stderr
    assert "Traceback" not in result.stderr


def test_latest_reports_the_newest_file_of_a_folder(tmp_path):
    """tlparse 0.4.3's --latest always fails; tldb's reports the most recently modified file."""
    folder = tmp_path / "logs"
    folder.mkdir()
    old = shutil.copy(data_path("torch213/export.log"), folder / "a.log")
    new = shutil.copy(data_path("torch213/draft_export.log"), folder / "b.log")
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))
    result = run_tldb("report", str(folder), "--latest", "-o", str(tmp_path / "o"), "--no-browser")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "raw.log").read_bytes() == (folder / "b.log").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    none = run_tldb("report", str(empty), "--latest", "-o", str(tmp_path / "o2"), "--no-browser")
    assert none.returncode == 1
    assert none.stderr.strip() == f"Error: No files found in directory {empty}"


def test_verbose_prints_each_unknown_field(tmp_path):
    """regional.log: torch 2.13's regional Inductor puts `subgraph_name`, a key tlparse 0.4.3
    does not know, on its envelopes."""
    log = data_path("torch213/regional.log")
    quiet = run_tldb("load", str(log), "--db", str(tmp_path / "q.db"))
    loud = run_tldb("load", str(log), "--db", str(tmp_path / "v.db"), "-v")
    assert quiet.returncode == loud.returncode == 0
    assert "Unknown field subgraph_name" not in quiet.stderr
    occurrences = sum("subgraph_name" in meta for _, meta, _ in envelopes("regional"))
    assert loud.stderr.count("Unknown field subgraph_name") == occurrences > 0
