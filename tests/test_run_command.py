"""`tldb run [--all-ranks-html] [-o DIR] -- CMD ...` (tlparse #162): CMD runs with TORCH_TRACE
set to a fresh folder, then what it wrote is reported. tldb exits with CMD's status and says
it; the report is written even when CMD fails. One real torch.compile run (the torch venv of
tests/data/README.md), and programs that write a trace and then fail or die."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import DATA, data_path, run_tldb

#: The Python with torch that regenerates tests/data (tests/data/README.md).
TORCH_PYTHON = Path(os.environ.get("TLDB_TORCH_PYTHON", "/tmp/torchvenv/bin/python"))

TINY_COMPILE = """
import torch

@torch.compile(backend="eager")
def f(x):
    return torch.sin(x) + x.shape[0]

f(torch.randn(4))
"""


def trace_folder(stderr: str) -> Path:
    found = re.search(r"^tldb run: TORCH_TRACE=(.+)$", stderr, re.M)
    assert found, stderr
    return Path(found.group(1))


@pytest.mark.skipif(not TORCH_PYTHON.exists(), reason=f"no torch at {TORCH_PYTHON}")
def test_real_torch_compile_run(tmp_path):
    script = tmp_path / "tiny.py"
    script.write_text(TINY_COMPILE)
    out = tmp_path / "out"
    result = run_tldb("run", "-o", str(out), "--", str(TORCH_PYTHON), str(script))
    assert result.returncode == 0, result.stderr
    folder = trace_folder(result.stderr)
    logs = list(folder.iterdir())
    assert len(logs) == 1 and logs[0].name.startswith("dedicated_log_torch_trace")
    assert f"{TORCH_PYTHON} exited with status 0" in result.stderr
    assert (out / "raw.log").read_bytes() == logs[0].read_bytes()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "[0/0]" in index
    assert list(out.glob("-_0_0_0/compilation_metrics_*.html"))
    shutil.rmtree(folder)


#: A program that writes a trace log into TORCH_TRACE, then ends as argv[1] says.
WRITE_THEN_FAIL = textwrap.dedent(
    """
    import os, shutil, signal, sys
    target = os.path.join(os.environ["TORCH_TRACE"], "dedicated_log_torch_trace_abc.log")
    shutil.copy(sys.argv[2], target)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.exit(int(sys.argv[1]))
    """
)


@pytest.mark.parametrize(
    ("end", "status", "said"),
    [("7", 7, "exited with status 7"), ("kill", 128 + signal.SIGKILL, "was killed by SIGKILL")],
)
def test_failing_command_still_gets_its_report(tmp_path, end, status, said):
    log = data_path("torch213/mismatch.log")
    out = tmp_path / "out"
    result = run_tldb(
        "run", "-o", str(out), "--", sys.executable, "-c", WRITE_THEN_FAIL, end, str(log)
    )
    assert result.returncode == status, result.stderr
    assert f"{sys.executable} {said}" in result.stderr
    assert (out / "raw.log").read_bytes() == log.read_bytes()
    assert (out / "index.html").is_file()
    shutil.rmtree(trace_folder(result.stderr))


def test_all_ranks(tmp_path):
    """A command writing one log per rank (compressed, as they are kept in tests/data)."""
    copy_ranks = (
        "import os, shutil, sys; [shutil.copy(p, os.environ['TORCH_TRACE']) for p in sys.argv[1:]]"
    )
    ranks = sorted((DATA / "torch213" / "ranks2").glob("*.log.gz"))
    out = tmp_path / "out"
    args = ("run", "--all-ranks-html", "-o", str(out), "--", sys.executable, "-c", copy_ranks)
    result = run_tldb(*args, *map(str, ranks))
    assert result.returncode == 0, result.stderr
    landing = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="rank_0/index.html"' in landing and 'href="rank_1/index.html"' in landing
    shutil.rmtree(trace_folder(result.stderr))


def test_no_trace_and_existing_output(tmp_path):
    # A command that writes nothing: the error says so; its own status is kept when nonzero.
    result = run_tldb("run", "-o", str(tmp_path / "o"), "--", sys.executable, "-c", "exit(3)")
    assert result.returncode == 3
    assert "Error: the command wrote no trace log into" in result.stderr
    shutil.rmtree(trace_folder(result.stderr))
    # An existing output folder is refused before the command runs.
    (tmp_path / "taken").mkdir()
    result = run_tldb("run", "-o", str(tmp_path / "taken"), "--", "false")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Directory") and "TORCH_TRACE" not in result.stderr
    # A command that cannot be started.
    result = run_tldb("run", "-o", str(tmp_path / "n"), "--", str(tmp_path / "no-such-program"))
    assert result.returncode == 1
    assert "Error: cannot run" in result.stderr
