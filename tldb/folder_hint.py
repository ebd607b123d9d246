"""What to say when `tldb report` is given a folder without --latest or --all-ranks-html.

A TORCH_TRACE folder is what people have at hand, so instead of only refusing it (tlparse
#155), the error says what the folder holds and the command that reports it: rank logs ->
--all-ranks-html, one log -> its path, several logs -> one of them or --latest, a tldb report
folder -> its database, nothing -> that there is nothing to report. Only names are looked at:
the folder may be large and the answer must be immediate.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from tldb.rankfiles import rank_in_name

#: File names a TORCH_TRACE folder's logs have (plain or gzip-compressed).
LOG_SUFFIXES = (".log", ".log.gz")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def folder_hint(folder: Path) -> str:
    """One line: what `folder` holds and how to report it."""
    try:
        with os.scandir(folder) as entries:
            files = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    except OSError as exc:
        return f"{folder} is a folder that cannot be listed: {exc.strerror or exc}"
    ranks = [name for name in files if rank_in_name(name) is not None]
    logs = [name for name in files if name.endswith(LOG_SUFFIXES)]
    here = shlex.quote(str(folder))
    if ranks:
        return f"{folder} is a folder with {_count(len(ranks), 'rank log')}: use --all-ranks-html"
    if len(logs) == 1:
        target = shlex.quote(str(folder / logs[0]))
        return f"{folder} is a folder with 1 log: report it with tldb report {target}"
    if logs:
        return (
            f"{folder} is a folder with {_count(len(logs), 'log')}: report one with "
            f"tldb report {here}/NAME, or the newest with --latest"
        )
    if "trace.db" in files:
        target = shlex.quote(str(folder / "trace.db"))
        return f"{folder} is a tldb report folder: re-render it with tldb report {target}"
    if files:
        among = _count(len(files), "file")
        return f"{folder} is a folder with no log (no *.log or *.log.gz among its {among})"
    return f"{folder} is an empty folder: there is no log to report"
