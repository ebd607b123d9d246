"""Runs killed with SIGKILL at random moments, and two runs into one folder at once.

`tldb report RANKS --all-ranks-html` over the four-rank torch 2.13 job is killed (SIGKILL to
its process group: the command, its rank workers and its background `rm`) at moments drawn
from a seeded generator over the length of an uninterrupted run; the same command is then run
again, and killed again, and so on. Whenever a run completes, and at the end, the output tree
must equal an uninterrupted run's byte for byte: every file, hidden ones included, nothing
excluded (tldb's databases and step records are reproducible).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import data_path

#: SIGKILLs sent in the kill test (the issue asks for at least 20).
KILLS = 20
SEED = 18


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root (folders as None), with file bytes."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def command(out: Path) -> list[str]:
    logs = data_path("torch213/ranks4")
    options = ["--all-ranks-html", "--no-browser", "-j", "2"]
    return [sys.executable, "-m", "tldb", "report", str(logs), "-o", str(out), *options]


def start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command(out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so the kill reaches every worker
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, float]:
    """An uninterrupted run's tree, and how long the run took (the range of kill moments)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    began = time.monotonic()
    result = subprocess.run(command(out), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return tree(out), time.monotonic() - began


def test_killed_runs_resume_to_the_same_report(reference, tmp_path):
    expected, duration = reference
    rng = random.Random(SEED)
    out = tmp_path / "out"
    kills = completions = 0
    while kills < KILLS:
        process = start(out)
        try:
            process.wait(timeout=rng.uniform(0.0, duration))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            continue
        finally:
            process.stderr.close()
        # It finished before the kill: a complete report, as an uninterrupted run's.
        assert process.returncode == 0
        assert tree(out) == expected
        completions += 1
        shutil.rmtree(out)  # start over, so that later kills hit early stages too
    final = subprocess.run(command(out), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert "Traceback" not in final.stderr
    assert tree(out) == expected
    assert kills == KILLS


def _wait_for(out: Path, process: subprocess.Popen) -> None:
    """Until the run has taken its folder (its unfinished-run marker is in OUT, or in the
    staging folder beside OUT of an --overwrite over a report), or fail if it ended first."""
    marker = ".tldb-unfinished"
    while not (out / marker).exists() and not any(
        out.parent.glob(f".{out.name}.tldb-new-*/{marker}")
    ):
        assert process.poll() is None, "the run ended before taking its folder"
        time.sleep(0.01)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_second_run_into_a_busy_folder_is_refused(reference, tmp_path, overwrite):
    """Run A takes the folder (its unfinished-run marker appears) and is paused (SIGSTOP) so
    that it is certainly still running; run B, the same command (with --overwrite over an
    earlier complete report, built beside it), stops at once with a one-line "busy" error and
    changes nothing, in OUT or beside it.
    A, resumed, completes: the folder holds exactly one run's report."""
    expected, _ = reference
    out = tmp_path / "out"
    extra = []
    if overwrite:
        assert subprocess.run(command(out), capture_output=True).returncode == 0
        extra = ["--overwrite"]
    first = start(out) if not overwrite else subprocess.Popen(
        command(out) + extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(out, first)
        os.killpg(first.pid, signal.SIGSTOP)
        during = tree(out.parent)
        second = subprocess.run(command(out) + extra, capture_output=True, text=True)
        assert tree(out.parent) == during  # B wrote nothing
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert first.wait() == 0, first.stderr.read()
    first.stderr.close()
    assert second.returncode == 1
    assert second.stderr.splitlines()[-1] == (
        f"Error: {out} is busy: another tldb run is writing to it; wait for it to finish"
    )
    assert "Traceback" not in second.stderr
    assert tree(out) == expected
