"""`tldb report RANKS --all-ranks-html -o OUT --overwrite` over an existing report: the old
report stays whole (every file, byte for byte) until the new one is complete, through a full
disk and through kill -9; reusable rank folders are hard-linked, not rebuilt (rankstaging.py).

The full-disk test mounts a small tmpfs (test_full_disk.small_fs) sized from the reports
measured here, so that the reused run fits and a run that reuses nothing does not.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import data_path
from test_full_disk import small_fs  # noqa: F401 (a fixture)
from test_killed_runs import tree

from tldb.rankstep import RECORD

SEED = 1818
#: Kills of a staged run at random moments in the kill test (one more, late, is aimed).
KILLS = 5


def command(out: Path, *extra: str) -> list[str]:
    logs = data_path("torch213/ranks4")
    options = ["--all-ranks-html", "--no-browser", "-j", "2", *extra]
    return [sys.executable, "-m", "tldb", "report", str(logs), "-o", str(out), *options]


def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(out, *extra), capture_output=True, text=True)


def one_line_full_error(result: subprocess.CompletedProcess) -> None:
    """Exit 1 and one `Error:` line, the last, saying the device is full (from the driver, or
    a rank worker's step: `rank N (render) failed: OSError: [Errno 28] No space left...`)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "no space left on" in errors[0].lower(), result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]


def usage(root: Path) -> int:
    """Bytes of file system blocks under root (what a tmpfs counts)."""
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file())


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, float, int]:
    """An uninterrupted fresh run: its tree, its seconds, and the bytes of its parts that a
    run reusing every rank writes again (everything outside the rank folders)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    began = time.monotonic()
    result = run(out)
    assert result.returncode == 0, result.stderr
    seconds = time.monotonic() - began
    landing = sum(
        p.stat().st_blocks * 512
        for p in out.rglob("*")
        if p.is_file() and not p.relative_to(out).parts[0].startswith("rank_")
    )
    return tree(out), seconds, landing


def test_full_disk_keeps_the_old_report_and_reuse_needs_room_for_the_new_parts_only(
    reference,
    small_fs,  # noqa: F811 (the fixture imported above)
    tmp_path,
):
    expected, _, landing = reference
    whole = tmp_path / "whole"
    assert run(whole).returncode == 0
    # Room for one report and its landing parts again, far from room for two reports.
    fs = small_fs((usage(whole) + 2 * landing + (1 << 20)) // 1024)
    out = fs / "out"
    assert run(out).returncode == 0
    inode = (out / "rank_0" / "trace.db").stat().st_ino
    reused = run(out, "--overwrite")  # same command: every rank folder reused
    assert reused.returncode == 0, reused.stderr
    assert tree(out) == expected
    assert (out / "rank_0" / "trace.db").stat().st_ino == inode  # linked, not rebuilt
    assert siblings(out) == []
    before = tree(out)
    other = run(out, "--overwrite", "--plain-text")  # other options: nothing reusable
    one_line_full_error(other)
    assert tree(out) == before  # the old report, whole
    assert siblings(out) == []  # the staging folder is gone, its space given back


def test_reused_rank_folders_are_linked_and_the_old_files_never_written(reference, tmp_path):
    """The staged run links the old rank folders' files; what it writes again there (the
    landing's rank_N/collectives_parity.json, the step records) must not go through the links
    into the old report: a link kept to an old file still reads the old bytes afterwards."""
    expected, _, _ = reference
    out = tmp_path / "out"
    assert run(out).returncode == 0
    edited = out / "rank_0" / "collectives_parity.json"
    edited.write_text("edited by hand")
    kept = {name: tmp_path / f"kept-{name}" for name in ("collectives_parity.json", RECORD)}
    for name, link in kept.items():
        os.link(out / "rank_0" / name, link)
    record = kept[RECORD].read_bytes()
    inode = (out / "rank_0" / "trace.db").stat().st_ino
    again = run(out, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert tree(out) == expected
    assert (out / "rank_0" / "trace.db").stat().st_ino == inode  # linked, not rebuilt
    assert kept["collectives_parity.json"].read_text() == "edited by hand"
    assert kept[RECORD].read_bytes() == record


def _stages(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.tldb-new-*"))


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_killed_staged_runs_leave_the_old_report_and_the_rerun_adopts_their_work(
    reference, tmp_path
):
    expected, duration, _ = reference
    out = tmp_path / "out"
    assert run(out, "--plain-text").returncode == 0
    old = tree(out)
    rng = random.Random(SEED)
    kills = 0
    while kills < KILLS:
        process = subprocess.Popen(
            command(out, "--overwrite"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            process.wait(timeout=rng.uniform(0.0, duration * 0.6))
        except subprocess.TimeoutExpired:
            _kill(process)
            kills += 1
            if tree(out) == old:
                continue
            # Killed after the swap, while the old report's files were being removed: the
            # new report is in place and complete (never a mix of the two).
            assert tree(out) == expected
            assert run(out, "--overwrite", "--plain-text").returncode == 0  # the old one again
            assert tree(out) == old
            continue
        # It finished first (adopting what earlier kills left): the new report, complete.
        assert process.returncode == 0
        assert tree(out) == expected
        assert run(out, "--overwrite", "--plain-text").returncode == 0  # the old one again
        assert tree(out) == old
    # One kill aimed after a rank folder of the staging folder is complete.
    process = subprocess.Popen(
        command(out, "--overwrite"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    while not any(stage.glob("rank_*/.tldb-step.json") for stage in _stages(out)):
        assert process.poll() is None, "the run ended before a rank was complete"
        time.sleep(0.005)
    _kill(process)
    assert tree(out) == old
    (stage,) = _stages(out)
    done = {
        rank_dir.name: (rank_dir / "trace.db").stat().st_ino
        for rank_dir in stage.glob("rank_*")
        if (rank_dir / ".tldb-step.json").is_file()
    }
    final = run(out, "--overwrite")
    assert final.returncode == 0, final.stderr
    assert "Traceback" not in final.stderr
    assert f"Multi-rank report generated under {out}\n" in final.stdout
    assert tree(out) == expected
    assert siblings(out) == []
    for name, inode in done.items():  # the killed run's complete ranks were taken over
        assert (out / name / "trace.db").stat().st_ino == inode


def test_combined_database_elsewhere_names_the_swapped_in_rank_databases(tmp_path):
    out, combined = tmp_path / "out", tmp_path / "elsewhere" / "ranks.db"
    combined.parent.mkdir()
    assert run(out, "--db", str(combined)).returncode == 0
    again = run(out, "--db", str(combined), "--overwrite", "--plain-text")
    assert again.returncode == 0, again.stderr
    conn = sqlite3.connect(f"file:{combined}?mode=ro", uri=True)
    rows = conn.execute("SELECT rank, value FROM meta WHERE key = 'rank_database'").fetchall()
    conn.close()
    assert sorted(rank for rank, _ in rows) == [0, 1, 2, 3]
    for rank, value in rows:
        assert (combined.parent / value).resolve() == (out / f"rank_{rank}" / "trace.db")
        assert (combined.parent / value).is_file()


def test_a_run_killed_after_its_swap_leaves_the_new_report_whole(reference, tmp_path):
    """The swap exchanges OUT with the staging folder in one rename; the run then removes the
    old report's files. Killed then, it leaves the new report in OUT, complete, and the next
    run removes what is left of the old one."""
    expected, _, _ = reference
    out = tmp_path / "out"
    assert run(out, "--plain-text").returncode == 0
    old = tree(out)
    before = out.stat().st_ino
    process = subprocess.Popen(
        command(out, "--overwrite"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    while out.stat().st_ino == before:  # OUT is the old folder until the exchange
        assert process.poll() is None, "the run ended without replacing OUT"
        time.sleep(0.001)
    _kill(process)
    assert tree(out) == expected != old
    again = run(out, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert tree(out) == expected
    assert siblings(out) == []
