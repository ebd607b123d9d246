"""`tldb report FOLDER` without --latest or --all-ranks-html (tlparse #155): a one-line error
that says what the folder holds and which command reports it, exit status 1, and no report."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from conftest import DATA, data_path, run_tldb


def hint(folder: Path, tmp_path: Path) -> str:
    out = tmp_path / "out"
    result = run_tldb("report", str(folder), "-o", str(out))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {folder} "), result.stderr
    assert not (out / "index.html").exists()
    return lines[0]


def test_rank_logs_point_to_all_ranks_html(tmp_path):
    folder = tmp_path / "ranks"
    shutil.copytree(DATA / "torch213" / "ranks4", folder)
    (folder / "notes.txt").write_text("not a log")
    names = sorted(p.name for p in folder.iterdir() if p.name.startswith("dedicated_log"))
    assert len(names) == 4
    line = hint(folder, tmp_path)
    assert line.endswith("is a folder with 4 rank logs: use --all-ranks-html")


def test_one_log_names_the_command_that_reports_it(tmp_path):
    folder = tmp_path / "trace dir"
    folder.mkdir()
    shutil.copy(data_path("torch213/mismatch.log"), folder / "dedicated_log_torch_trace_x1.log")
    line = hint(folder, tmp_path)
    log = folder / "dedicated_log_torch_trace_x1.log"
    command = f"tldb report {shlex.quote(str(log))}"
    assert line.endswith(f"is a folder with 1 log: report it with {command}")
    # The command it gives works.
    args = shlex.split(command)[1:]
    result = run_tldb(*args, "-o", str(tmp_path / "from_hint"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("files", "ending"),
    [
        (
            ["a.log", "b.log.gz"],
            "is a folder with 2 logs: report one with tldb report {q}/NAME, "
            "or the newest with --latest",
        ),
        (
            ["trace.db", "index.html"],
            "is a tldb report folder: re-render it with tldb report {q}/trace.db",
        ),
        (["readme.txt"], "is a folder with no log (no *.log or *.log.gz among its 1 file)"),
        ([], "is an empty folder: there is no log to report"),
    ],
)
def test_other_folders(tmp_path, files, ending):
    folder = tmp_path / "f"
    folder.mkdir()
    for name in files:
        (folder / name).write_bytes(b"")
    (folder / ".hidden.log").write_bytes(b"")  # hidden files are not counted
    (folder / "sub.log").mkdir()  # nor folders
    assert hint(folder, tmp_path).endswith(ending.format(q=shlex.quote(str(folder))))
