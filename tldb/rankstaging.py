"""`tldb report DIR --all-ranks-html -o OUT --overwrite` over an existing report: the new
report is built beside it and swapped in complete, as a single log's is (staging.py), so a
full disk or a kill midway leaves the previous report whole.

The rank folders of OUT that this run can reuse (rankstep.current_record) are not rebuilt:
their files are hard-linked into the staging folder, which costs a directory entry each, not
their bytes, so a disk with room for the new parts only still takes the run. Hard links share
the old report's files, so nothing in the staging folder may be written in place:
- a rank step rewrites its step record in place (rankstep._write_record): records are copied;
- a render writes its pages in place, clearing the old ones (unlinking them) first only when a
  previous render completed: the pages of a rank whose render did not complete are not linked;
- everything else a step writes is unlinked or built under a temporary name and renamed first
  (rank and combined databases, rankstep._clear_pages).
The record is copied last: a rank folder whose linking was cut short has none, so it is redone.

A run killed midway leaves OUT as it was and its staging folder beside it; the next run of the
same command adopts that folder (whatever in it is complete and current for this run is kept)
instead of starting over. A failed run removes its staging folder (on a full disk, that is the
space to give back). --only-ranks batch shares write rank folders in place and are not staged.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tldb import rankstep, resume, staging
from tldb.errors import StrictError
from tldb.outlock import lock_folder, unlock
from tldb.report import DB_NAME

T = TypeVar("T")

#: Why os.link may fail where a copy works: another file system, or none with hard links.
_NO_LINKS = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EOPNOTSUPP})


def wanted(out_dir: Path, overwrite: bool, keys: dict[int, dict]) -> bool:
    """Whether this run replaces a folder that must stay whole until the new report is: asked
    to --overwrite an existing folder that a rename can swap, and not what a killed in-place
    run of this command left (resume.py: nothing whole to keep, it is completed in place)."""
    return (
        overwrite
        and out_dir.is_dir()
        and not out_dir.is_symlink()
        and staging.can_stage(out_dir)
        and not resume.resumable(out_dir, keys)
    )


def run_staged(out_dir: Path, keys: dict[int, dict], build: Callable[[Path], T]) -> T:
    """Run build(stage) with OUT locked (outlock.py), the staging folder prepared (adopted or
    new, OUT's reusable rank folders linked in, marked unfinished), and swap it in when build
    returns, or raises StrictError (the report is complete all the same)."""
    lock = lock_folder(out_dir)
    try:
        stage = staging.stage_for(out_dir, adopt=True)  # a killed run's work is kept
        with staging.swapped_in(stage, out_dir):
            fill(stage, out_dir, keys)
            resume.mark(stage, keys)
            strict = None
            try:
                result = build(stage)
            except StrictError as exc:
                strict = exc
    finally:
        unlock(lock)
    if strict is not None:
        raise strict
    return result


def fill(stage: Path, out_dir: Path, keys: dict[int, dict]) -> None:
    """Keep in stage only the rank folders complete and current for this run (an adopted
    folder's); link in those of out_dir's reusable rank folders it lacks."""
    for child in list(stage.iterdir()):
        rank = _rank_of(child.name)
        keep = rank in keys and child.is_dir() and not child.is_symlink()
        record = rankstep.current_record(child, keys[rank]) if keep else None
        if record is not None:
            if record.get("render") is None:
                # A render writes over pages in place, and these may be links into OUT (a
                # run killed while re-rendering a linked rank, after its record said so and
                # before it cleared the old pages): only the database and record stay.
                rankstep._clear_pages(child)
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    for rank, key in sorted(keys.items()):
        target = stage / f"rank_{rank}"
        source = out_dir / f"rank_{rank}"
        if target.exists() or source.is_symlink():
            continue
        record = rankstep.current_record(source, key)
        if record is not None:
            link_rank(source, target, with_pages=record.get("render") is not None)


def _rank_of(name: str) -> int | None:
    number = name.removeprefix("rank_")
    return int(number) if name.startswith("rank_") and number.isdigit() else None


def link_rank(source: Path, target: Path, with_pages: bool) -> None:
    """Hard-link a reusable rank folder's files into target (its pages too when its render
    completed), then copy its step record, last."""
    target.mkdir()
    if with_pages:
        for folder, dirs, files in os.walk(source):
            here = target / Path(folder).relative_to(source)
            for name in dirs:
                if (Path(folder) / name).is_symlink():
                    _link(Path(folder) / name, here / name)  # the link itself, not followed
                else:
                    (here / name).mkdir()
            for name in files:
                if here != target or name != rankstep.RECORD:
                    _link(Path(folder) / name, here / name)
    else:
        _link(source / DB_NAME, target / DB_NAME)
    shutil.copyfile(source / rankstep.RECORD, target / rankstep.RECORD)


def _link(source: Path, target: Path) -> None:
    """A hard link, or a copy where the file system has none (a full disk still raises)."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        shutil.copy2(source, target, follow_symlinks=False)


def moved(path: Path | None, out_dir: Path, stage: Path) -> Path | None:
    """Where a path inside out_dir is while the report is built in stage (others unchanged)."""
    if path is None:
        return None
    try:
        return stage / path.resolve().relative_to(out_dir.resolve())
    except ValueError:
        return path


def repoint(combined: Path, out_dir: Path, stage: Path) -> None:
    """A combined database kept outside OUT (--db) names each rank's database by a path
    relative to itself (combine.py), which leads into the staging folder: make it lead to
    where the rank databases will be once the report is swapped in."""
    folder = combined.resolve().parent
    conn = sqlite3.connect(combined)
    try:
        rows = conn.execute("SELECT rank, value FROM meta WHERE key = 'rank_database'").fetchall()
        for rank, value in rows:
            inside = moved(folder / value, stage, out_dir)
            relative = os.path.relpath(inside, folder) if inside is not None else value
            conn.execute(
                "UPDATE meta SET value = ? WHERE rank = ? AND key = 'rank_database'",
                [relative, rank],
            )
        conn.commit()
    finally:
        conn.close()
