"""Row counts of every table and view of the served databases, counted once per server.

Datasette's table page runs `select count(*) from NAME` on every request to print "N rows".
On a view of a large log that count is the most expensive part of the page (0.7 s for
`trace_events`, 0.3 s for `envelope_kinds` on the 406 MB benchmark log's database, more than
rendering the page), and under many users it is paid again and again. tldb serves every
database immutable, so a count never changes while the server runs.

Datasette has a mechanism for exactly this: `inspect_data` (what `datasette inspect` writes),
whose counts the table page uses instead of counting when the database is immutable. Its
`inspect` counts tables only; here views are counted too, in a background thread started with
the server, each count stopped after a time limit (a view too slow to count keeps Datasette's
own per-request count). Until a database's counts are complete Datasette counts as before.

Datasette also builds its list of a database's tables (the database page) from the same
`inspect_data`; so the database's cached table counts are set to its tables only before its
`inspect_data` entry appears, or views would be listed as tables.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

#: Longest a single count may take before it is left to Datasette (seconds).
COUNT_TIME_LIMIT_S = 20.0


def count_rows(path: Path, time_limit_s: float = COUNT_TIME_LIMIT_S) -> tuple[dict, set]:
    """({name: row count} for every table and view of the database at path, {table names}).
    A count that errors or passes the time limit is left out."""
    conn = sqlite3.connect(f"file:{quote(str(path))}?immutable=1", uri=True)
    try:
        objects = conn.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
        ).fetchall()
        counts: dict[str, int] = {}
        deadline = [0.0]
        conn.set_progress_handler(lambda: time.monotonic() > deadline[0], 10_000)
        for name, _kind in objects:
            deadline[0] = time.monotonic() + time_limit_s
            escaped = name.replace('"', '""')
            try:
                counts[name] = conn.execute(f'SELECT count(*) FROM "{escaped}"').fetchone()[0]
            except sqlite3.Error:
                continue
        return counts, {name for name, kind in objects if kind == "table"}
    finally:
        conn.close()


#: Held while counts are handed to Datasette and while a served database is replaced
#: (serve_swap.switch): counts of the file before never land on the object of the file after.
LOCK = threading.Lock()


def prime(
    datasette, time_limit_s: float = COUNT_TIME_LIMIT_S, names: Iterable[str] | None = None
) -> None:
    """Count every immutable database of `datasette` (or those named) and hand the counts to
    Datasette (see the module docstring). Blocking: run it in a thread (start_priming). The
    counts of a database replaced meanwhile by another file are dropped."""
    from datasette.inspect import inspect_hash

    if datasette.inspect_data is None:
        datasette.inspect_data = {}
    wanted = None if names is None else set(names)
    for name, db in list(datasette.databases.items()):
        if (
            db.is_mutable
            or db.is_memory
            or not db.path
            or (wanted is not None and name not in wanted)
        ):
            continue
        path = Path(db.path)
        try:
            counts, tables = count_rows(path, time_limit_s)
            digest = inspect_hash(path)
            size = path.stat().st_size
        except (sqlite3.Error, OSError):
            continue
        with LOCK:
            if datasette.databases.get(name) is not db:
                continue
            db._cached_table_counts = {t: counts.get(t) for t in sorted(tables)}
            datasette.inspect_data[name] = {
                "hash": digest,
                "size": size,
                "file": path.name,
                "tables": {key: {"count": value} for key, value in counts.items()},
            }


def forget(datasette, name: str) -> None:
    """Drop the counts of a database about to be replaced (call with LOCK held)."""
    if datasette.inspect_data:
        datasette.inspect_data.pop(name, None)


def _prime_quietly(datasette, names: Iterable[str] | None) -> None:
    """prime() at the lowest CPU priority (Linux: nice 19 for this thread alone): counting is
    an investment for later requests and must not slow the first ones down. SQLite releases
    Python's lock while it counts, so the thread really runs only on otherwise idle cores."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    prime(datasette, names=names)


def start_priming(datasette, names: Iterable[str] | None = None) -> threading.Thread:
    """prime() in a daemon thread: the server answers meanwhile, counting as Datasette does."""
    thread = threading.Thread(
        target=_prime_quietly, args=(datasette, names), name="tldb-counts", daemon=True
    )
    thread.start()
    return thread
