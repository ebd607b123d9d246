"""--overwrite without losing the old report: the new one is built beside it, then swapped in.

`tldb report LOG -o OUT --overwrite` over an existing report writes into a hidden sibling
(`.OUT.tldb-new-PID`) and exchanges the two folders only when the new report is complete
(`renameat2(RENAME_EXCHANGE)` where Linux offers it: atomic; else two renames a moment
apart). A run that fails (a full disk, bad input) or is killed leaves OUT as it was; the
sibling is removed on failure, or by the next run's cleanup of stale siblings.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def can_stage(out_dir: Path) -> bool:
    """Whether a sibling can be made and swapped with out_dir: not a mount point (a rename
    cannot move it) and its parent writable. Elsewhere the old in-place replacement is used."""
    return not os.path.ismount(out_dir) and os.access(out_dir.resolve().parent, os.W_OK)


def _stage_name(out_dir: Path, pid: int | str) -> Path:
    return out_dir.parent / f".{out_dir.name}.tldb-new-{pid}"


def dead_runs(folder: Path, prefix: str) -> list[Path]:
    """The entries of `folder` named `prefix` followed by the id of a process no longer
    running: what killed runs left (staging folders here, serve_tables' copies)."""
    found = []
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            pid = path.name[len(prefix) :] if path.name.startswith(prefix) else ""
            if pid.isdigit() and not alive(int(pid)):
                found.append(path)
    return found


def dead_stages(out_dir: Path) -> list[Path]:
    """The staging folders beside out_dir of runs no longer alive, newest first."""
    dead = [
        path
        for path in dead_runs(out_dir.parent, _stage_name(out_dir, "").name)
        if path.is_dir() and not path.is_symlink()
    ]
    return sorted(dead, key=lambda path: path.stat().st_mtime_ns, reverse=True)


def stage_for(out_dir: Path, adopt: bool = False) -> Path:
    """A fresh, empty staging folder beside out_dir, or with `adopt` the newest folder a dead
    run left there, renamed as this run's; other dead runs' folders are removed."""
    stage = _stage_name(out_dir, os.getpid())
    shutil.rmtree(stage, ignore_errors=True)
    dead = dead_stages(out_dir)
    if adopt and dead:
        os.rename(dead.pop(0), stage)
    else:
        stage.mkdir()
    for stale in dead:
        shutil.rmtree(stale, ignore_errors=True)
    return stage


def alive(pid: int) -> bool:
    """Whether a process of this id runs: it exists (it may belong to another user) and is
    not a zombie (a killed process whose parent is gone, waiting to be reaped, which may take
    a while: it runs no code and writes nothing more)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: it exists
    return state != "Z"


def exchange(stage: Path, out_dir: Path) -> None:
    """Put stage's content at out_dir and out_dir's old content at stage."""
    if _renameat2_exchange(stage, out_dir):
        return
    old = out_dir.parent / f".{out_dir.name}.tldb-old-{os.getpid()}"
    os.rename(out_dir, old)
    os.rename(stage, out_dir)
    os.rename(old, stage)


def _renameat2_exchange(a: Path, b: Path) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def discard(stage: Path) -> None:
    """Remove a staging folder (after a failure, or the old report after the exchange)."""
    with contextlib.suppress(OSError):
        shutil.rmtree(stage)


@contextlib.contextmanager
def swapped_in(stage: Path, out_dir: Path) -> Iterator[None]:
    """Build in stage within the block; it is exchanged with out_dir when the block ends
    well, then removed (holding the old content); removed at once when the block raises."""
    try:
        yield
        exchange(stage, out_dir)
    except BaseException:
        discard(stage)
        raise
    discard(stage)
