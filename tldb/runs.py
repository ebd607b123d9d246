"""What a RUN argument of `tldb diff A B`, `tldb check` and `tldb history add` names.

A run is given the way users have it at hand: a TORCH_TRACE log, a tldb database, a report
folder (`tldb report -o DIR`: DIR/trace.db), a multi-rank report folder (DIR/rank_N/trace.db),
a folder of rank logs (dedicated_log_torch_trace_rank_N*.log) or a TORCH_TRACE folder holding
the one log of a single process. Everything downstream reads
databases through the typed views, so logs are loaded into temporary databases first, with the
library's own loader; those live as long as the `opened_run` context.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tldb import db as dbmod
from tldb.errors import InputError
from tldb.rankfiles import rank_in_name

_RANK_FOLDER = re.compile(r"rank_(\d+)")


@dataclass
class Run:
    """One run: a database per rank (rank None for a single-rank run), and how it was given."""

    label: str
    databases: dict[int | None, Path] = field(default_factory=dict)
    #: True when the databases are the user's own files (their paths can be shown in commands).
    persistent: bool = True

    @property
    def multi_rank(self) -> bool:
        return None not in self.databases


def _rank_databases(folder: Path) -> dict[int | None, Path]:
    """DIR/rank_N/trace.db of a multi-rank report folder, by rank."""
    found: dict[int | None, Path] = {}
    for child in sorted(folder.iterdir()):
        match = _RANK_FOLDER.fullmatch(child.name)
        if match and (child / "trace.db").is_file():
            found[int(match.group(1))] = child / "trace.db"
    return found


def _rank_logs(folder: Path) -> dict[int, Path]:
    """The dedicated_log_torch_trace_rank_N logs of a folder, by rank (tlparse's naming)."""
    found: dict[int, Path] = {}
    for child in sorted(folder.iterdir()):
        rank = rank_in_name(child.name) if child.is_file() else None
        if rank is not None:
            if rank in found:
                raise InputError(f"{folder} has two logs for rank {rank}")
            found[rank] = child
    return found


def _load(log: Path, scratch: Path, name: str) -> Path:
    from tldb.loader import build_database

    target = scratch / f"{name}.db"
    build_database([log], target, pipelined=False)
    return target


@contextlib.contextmanager
def opened_run(path: Path) -> Iterator[Run]:
    """The run at path, with a database for each of its ranks; temporary ones are removed on
    exit. Raises InputError for anything that is not a log, a database or a report folder."""
    with contextlib.ExitStack() as stack:

        def scratch() -> Path:
            return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tldb-run-")))

        label = str(path)
        if path.is_file():
            if dbmod.is_database(path):
                yield Run(label, {None: path})
            else:
                yield Run(label, {None: _load(path, scratch(), "run")}, persistent=False)
            return
        if not path.is_dir():
            raise InputError(f"{path} is not a log, a tldb database or a report folder")
        if (path / "trace.db").is_file():
            yield Run(label, {None: path / "trace.db"})
            return
        ranks = _rank_databases(path)
        if ranks:
            yield Run(label, ranks)
            return
        logs = _rank_logs(path)
        if not logs:
            # a TORCH_TRACE folder of a single process: one log, no rank in its name
            single = [p for p in path.iterdir() if p.is_file() and p.suffix == ".log"]
            if len(single) != 1:
                raise InputError(
                    f"{path} holds no trace.db, no rank_N/trace.db, no "
                    "dedicated_log_torch_trace_rank_N logs and not exactly one .log file"
                )
            yield Run(label, {None: _load(single[0], scratch(), "run")}, persistent=False)
            return
        folder = scratch()
        loaded: dict[int | None, Path] = {r: _load(p, folder, f"rank_{r}") for r, p in logs.items()}
        yield Run(label, loaded, persistent=False)


def only_log(conn, path: Path) -> int:
    """The id of the one log of a database; a run is one log (per rank)."""
    ids = [row[0] for row in conn.execute("SELECT id FROM logs ORDER BY id")]
    if len(ids) != 1:
        raise InputError(f"{path} holds {len(ids)} logs; a run is one log per rank")
    return ids[0]
