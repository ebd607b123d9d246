"""What makes an interrupted many-rank report folder resumable by the same command.

`tldb report DIR -o OUT --all-ranks-html` writes OUT/.tldb-unfinished (the run's rank keys,
rankstep.step_key) right after it takes the folder, and removes it once the landing page is
written. A run killed at any moment leaves either that marker, or a folder holding nothing
but tldb's own hidden leftovers (a `.tldb-replaced-*` folder being deleted), or an empty
folder (killed between creating and marking it; tlparse would refuse it): running the same
command again then takes the folder over without --overwrite, reusing the ranks whose step
records match and redoing the rest. A different command (another log folder, other options)
does not match, and needs --overwrite as any existing folder does.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson

MARKER = ".tldb-unfinished"


def _content(keys: dict[int, dict]) -> bytes:
    return orjson.dumps({str(rank): key for rank, key in sorted(keys.items())})


def resumable(out_dir: Path, keys: dict[int, dict]) -> bool:
    """True when out_dir is what a killed run of this same command left behind."""
    if not out_dir.is_dir() or out_dir.is_symlink():
        return False
    try:
        if (out_dir / MARKER).read_bytes() == _content(keys):
            return True
    except OSError:
        pass
    return all(child.name.startswith(".tldb-") for child in out_dir.iterdir())


def mark(out_dir: Path, keys: dict[int, dict]) -> None:
    """Say that out_dir holds an unfinished run of these keys."""
    (out_dir / MARKER).write_bytes(_content(keys))


def unmark(out_dir: Path) -> None:
    """The run is complete: the folder is a finished report."""
    with contextlib.suppress(FileNotFoundError):
        (out_dir / MARKER).unlink()
