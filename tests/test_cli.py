"""Command-line behaviour: clear one-line errors, tlparse's output-folder rules, load stats."""

from __future__ import annotations

from conftest import run_tldb


def test_missing_input_is_one_line_error(tmp_path):
    result = run_tldb("report", str(tmp_path / "nope.log"), "-o", str(tmp_path / "o"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'nope.log'} is not a file"


def test_existing_output_needs_overwrite(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "comp_metrics.log"
    out = tmp_path / "o"
    out.mkdir()
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 1
    assert "already exists; pass --overwrite" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    again = run_tldb("report", str(log), "-o", str(out), "--no-browser", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert (out / "trace.db").is_file()


def test_overwrite_leaves_only_the_new_report(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "comp_metrics.log"
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


def test_overwrite_keeps_the_database_being_rendered(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "comp_metrics.log"
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


def test_unreadable_file(tmp_path):
    log = tmp_path / "secret.log"
    log.write_text("x")
    log.chmod(0)
    result = run_tldb("load", str(log), "--db", str(tmp_path / "t.db"))
    log.chmod(0o600)
    import os

    if os.geteuid() == 0:  # root reads anything: the load then simply works
        assert result.returncode == 0
    else:
        assert result.returncode == 1
        assert result.stderr.startswith("Error: cannot read")


def test_load_prints_tlparse_stats(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "simple_corrupted_json.log"
    result = run_tldb("load", str(log), "--db", str(tmp_path / "t.db"))
    assert result.returncode == 0, result.stderr
    assert "Stats { ok: 64, fail_payload_md5: 1 }" in result.stderr


def test_report_from_database_reparses_nothing(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "comp_metrics.log"
    first = run_tldb("report", str(log), "-o", str(tmp_path / "a"), "--no-browser")
    assert first.returncode == 0, first.stderr
    second = run_tldb(
        "report", str(tmp_path / "a" / "trace.db"), "-o", str(tmp_path / "b"), "--no-browser"
    )
    assert second.returncode == 0, second.stderr
    for name in ("compile_directory.json", "raw.jsonl", "raw.log"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_raw_log_rebuilt_when_the_log_is_gone(corpus, tmp_path):
    log = tmp_path / "copy.log"
    log.write_bytes((corpus / "tlparse-tests" / "inputs" / "simple.log").read_bytes())
    assert run_tldb("load", str(log), "--db", str(tmp_path / "t.db")).returncode == 0
    original = log.read_bytes()
    log.unlink()
    result = run_tldb("report", str(tmp_path / "t.db"), "-o", str(tmp_path / "o"), "--no-browser")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "raw.log").read_bytes() == original


def test_database_from_another_schema_version_is_refused_clearly(corpus, tmp_path):
    import sqlite3

    log = corpus / "tlparse-tests" / "inputs" / "comp_metrics.log"
    assert run_tldb("load", str(log), "--db", str(tmp_path / "t.db")).returncode == 0
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    result = run_tldb("report", str(tmp_path / "t.db"), "-o", str(tmp_path / "o"), "--no-browser")
    assert result.returncode == 1
    assert "schema version 0" in result.stderr and "rebuild it" in result.stderr
    assert "Traceback" not in result.stderr


def test_latest_reports_the_newest_file_of_a_folder(corpus, tmp_path):
    """tlparse 0.4.3's --latest always fails; tldb's reports the most recently modified file."""
    import os
    import shutil

    folder = tmp_path / "logs"
    folder.mkdir()
    old = shutil.copy(corpus / "tlparse-tests" / "inputs" / "simple.log", folder / "a.log")
    new = shutil.copy(corpus / "tlparse-tests" / "inputs" / "comp_metrics.log", folder / "b.log")
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


def test_verbose_prints_each_unknown_field(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "autotune_with_compile_id.log"
    quiet = run_tldb("load", str(log), "--db", str(tmp_path / "q.db"))
    loud = run_tldb("load", str(log), "--db", str(tmp_path / "v.db"), "-v")
    assert quiet.returncode == loud.returncode == 0
    assert "Unknown field compilation_metrics_runtime" not in quiet.stderr
    occurrences = log.read_text().count('"compilation_metrics_runtime"')
    assert loud.stderr.count("Unknown field compilation_metrics_runtime") == occurrences > 0
