"""`tldb serve LOG`: the database a log is served from, loaded (or reused) before serving.

Serving a log writes nothing but its database. Without `--db` the database goes to the user's
cache folder ($XDG_CACHE_HOME/tldb/serve, else ~/.cache/tldb/serve), one folder per log path,
and is reused while the log is unchanged (same path, size and modification time), so serving
the same log again starts at once.

The load is `tldb load`'s, no more: the serving tables (the slow views held as tables) are
built afterwards, while the server already answers (serve_tables), for a new database and for
a reused one that lacks them alike.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import threading
from pathlib import Path

from tldb import db as dbmod
from tldb.errors import InputError, TldbError
from tldb.report import load_apart, print_load_summary

DB_NAME = "trace.db"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tldb" / "serve"


def default_db(log: Path) -> Path:
    """Where the database of a log goes without --db: a folder named after the log's path."""
    digest = hashlib.sha256(str(log).encode()).hexdigest()[:16]
    return cache_root() / f"{log.stem[:40]}-{digest}" / DB_NAME


def up_to_date(db_path: Path, log: Path) -> bool:
    """Whether db_path is a finished database of exactly this log, as it is now."""
    if not (db_path.is_file() and dbmod.is_database(db_path)):
        return False
    try:
        db = dbmod.open_readonly(db_path)
    except TldbError:
        return False
    try:
        rows = db.conn.execute("SELECT path, size, mtime_ns FROM logs").fetchall()
    finally:
        db.conn.close()
    stat = log.stat()
    return rows == [(str(log), stat.st_size, stat.st_mtime_ns)]


def _warm_imports() -> None:
    """What serving needs next, imported while the load runs in its own process (Datasette's
    import alone takes one to two seconds that would otherwise come after the load)."""
    import datasette.app  # noqa: F401
    import uvicorn  # noqa: F401

    from tldb.registry import ModuleRegistry
    from tldb.serve import warm_metadata

    ModuleRegistry.discover()
    warm_metadata()


#: Niceness of the thread that imports what serving needs while the log loads, where the idle
#: class is not available (see lower_priority).
WARM_NICENESS = 10


def lower_priority() -> None:
    """Put the calling thread (Linux: that thread alone) below the load: in the idle
    scheduling class, which runs only on a core nothing else wants, else at WARM_NICENESS.
    The load is two busy processes on a 2-core machine: at nice 10 the imports still took
    about a tenth of a core from it whenever all three were runnable."""
    tid = threading.get_native_id()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(
            os.PRIO_PROCESS, tid, max(WARM_NICENESS, os.getpriority(os.PRIO_PROCESS, tid))
        )


def _start_warming(threads: list[threading.Thread]) -> None:
    """_warm_imports in a thread below the load's priority (lower_priority), added to
    `threads` (joined before anything else forks)."""

    def run() -> None:
        lower_priority()
        _warm_imports()

    thread = threading.Thread(target=run, name="tldb-warm", daemon=True)
    thread.start()
    threads.append(thread)


def load_logs(logs: list[Path], db_option: Path | None, verbose: bool) -> dict[Path, Path]:
    """The database of each log (log as given -> database), loading those not up to date,
    with a progress bar and tlparse's statistics line for each."""
    if db_option is not None and len(logs) > 1:
        raise InputError("--db names the database of one log; give one LOG with it")
    found: dict[Path, Path] = {}
    for given in logs:
        log = given.resolve()
        if not log.is_file():
            raise InputError(f"{given} is not a file")
        db_path = db_option if db_option is not None else default_db(log)
        warming: list[threading.Thread] = []
        try:
            if up_to_date(db_path, log):
                print(f"{given}: reusing {db_path}", file=sys.stderr)
            else:
                print(f"{given}: loading into {db_path}", file=sys.stderr)
                # What `tldb load` does and no more: the serving tables are built once the
                # server runs (serve_tables).
                load_apart([log], db_path, meanwhile=functools.partial(_start_warming, warming))
            db = dbmod.open_readonly(db_path)
            try:
                ids = [r[0] for r in db.conn.execute("SELECT id FROM logs")]
                print_load_summary(db, ids[0], verbose)
            finally:
                db.conn.close()
        finally:
            # The imports may outlast the load (they only get a core the load leaves
            # free): the load's summary comes first, as `tldb load` prints it at once.
            for thread in warming:
                thread.join()
        found[given] = db_path
    return found
