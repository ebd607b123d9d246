"""A file system that fills up during `tldb load` and `tldb report`: a one-line error, exit 1,
no database or report that looks complete, and with --overwrite the previous report intact.

Each test mounts a small tmpfs (size=...) of its own; where mounting is not permitted (not
root, no CAP_SYS_ADMIN in a container) the tests are skipped with that reason.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from conftest import data_path, run_tldb

LOG = "torch213/dynamo.log"  # 0.5 MB log: a 0.7 MB database, a 2 MB report
SMALL_LOG = "torch213/regional.log"  # 0.1 MB log: a much smaller report


@pytest.fixture
def small_fs(tmp_path):
    """A function mounting a tmpfs of the given size (KiB) at tmp_path/fs; unmounted after."""
    mounted = []

    def mount(kib: int) -> Path:
        target = tmp_path / f"fs{len(mounted)}"
        target.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(target)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=False)


def _tree_hash(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _one_line_full_error(result) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "no space left on the device" in errors[0], result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]


def test_load_on_a_full_disk(small_fs):
    fs = small_fs(400)
    result = run_tldb("load", str(data_path(LOG)), "--db", str(fs / "trace.db"))
    _one_line_full_error(result)
    assert list(fs.iterdir()) == []  # no database, not even a temporary one


def test_combine_on_a_full_disk(small_fs, tmp_path):
    """A full disk while ranks are copied into the combined database is the full-disk error
    (not "cannot combine" the rank database being copied), and leaves no file behind."""
    ranks = data_path("torch213/ranks2")
    databases = []
    for rank in (0, 1):
        db = tmp_path / f"rank_{rank}" / "trace.db"
        db.parent.mkdir()
        log = ranks / f"dedicated_log_torch_trace_rank_{rank}.log"
        assert run_tldb("load", str(log), "--db", str(db)).returncode == 0
        databases.append(str(db))
    fs = small_fs(256)
    result = run_tldb("combine", *databases, "-o", str(fs / "ranks.db"))
    _one_line_full_error(result)
    assert list(fs.iterdir()) == []


def test_report_on_a_disk_that_fills_while_rendering(small_fs):
    """The database fits, the pages do not: the index page (written last) is absent."""
    fs = small_fs(1200)
    out = fs / "out"
    result = run_tldb("report", str(data_path(LOG)), "-o", str(out), "--no-browser")
    _one_line_full_error(result)
    assert not (out / "index.html").exists()
    assert not any(p.name.startswith(".trace.db.tmp") for p in out.rglob("*"))


def test_report_on_a_disk_too_small_for_the_database(small_fs):
    fs = small_fs(300)
    out = fs / "out"
    result = run_tldb("report", str(data_path(LOG)), "-o", str(out), "--no-browser")
    _one_line_full_error(result)
    assert not (out / "index.html").exists() and not (out / "trace.db").exists()
    assert [p.name for p in out.iterdir()] == []


def test_overwrite_keeps_the_previous_report_until_the_new_one_is_complete(small_fs, tmp_path):
    fs = small_fs(2600)
    out = fs / "out"
    first = run_tldb("report", str(data_path(SMALL_LOG)), "-o", str(out), "--no-browser")
    assert first.returncode == 0, first.stderr
    before = _tree_hash(out)
    assert "index.html" in before and "trace.db" in before
    result = run_tldb("report", str(data_path(LOG)), "-o", str(out), "--no-browser", "--overwrite")
    _one_line_full_error(result)
    assert _tree_hash(out) == before  # the old report, whole
    assert sorted(p.name for p in fs.iterdir()) == ["out"]  # no staging folder left
    # With room, the same --overwrite replaces it by exactly a fresh report.
    roomy = tmp_path / "roomy"
    fresh = run_tldb("report", str(data_path(LOG)), "-o", str(roomy), "--no-browser")
    assert fresh.returncode == 0
    replaced = tmp_path / "replaced"
    run_tldb("report", str(data_path(SMALL_LOG)), "-o", str(replaced), "--no-browser")
    again = run_tldb(
        "report", str(data_path(LOG)), "-o", str(replaced), "--no-browser", "--overwrite"
    )
    assert again.returncode == 0, again.stderr
    assert _tree_hash(replaced) == _tree_hash(roomy)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_overwrite_from_the_folders_own_database(tmp_path):
    """Re-rendering OUT/trace.db into OUT with --overwrite: the database moves into the new
    report (the same file), and the report equals the one made from the log."""
    out = tmp_path / "out"
    assert run_tldb("report", str(data_path(LOG)), "-o", str(out), "--no-browser").returncode == 0
    before = _tree_hash(out)
    inode = (out / "trace.db").stat().st_ino
    again = run_tldb("report", str(out / "trace.db"), "-o", str(out), "--no-browser", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert _tree_hash(out) == before
    assert (out / "trace.db").stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
