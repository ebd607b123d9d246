"""The serving tables of a served log's database, built after its load, while it is served.

`tldb serve LOG` holds the slow analysis views as tables (combine.materialize_views, issue 18)
so that many users get their pages at once. Building them costs about 40% of the load on a
big log (6 s of 15 on the 406 MB benchmark log); inside the load it made the server start that
much later than `tldb load` would have finished. So the load is exactly `tldb load`'s, the
server starts on the database as it is (the views answer), and this module builds the tables
in a background process meanwhile:

1. copy the database to a hidden temporary file beside it (`.NAME.serving-PID`);
2. turn the views into tables in the copy, with the very function `--serving-tables` uses;
3. replace the database with the copy (one rename), unless the database changed meanwhile.

The database file itself is never written: the server keeps it open immutable (serve_cache,
serve_counts rely on that), and a rename leaves its open connections on the old file, whose
rows are the same. The server then moves to the new file at its next request (serve_swap).

A kill at any moment leaves the database as it was (a complete database, views and all) and at
worst a temporary file of a dead process, which the next build removes; the next serve of the
same log reuses the database and builds its tables the same way. Nothing is ever half a table
under a view's name: the name only ever points to a complete file.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from tldb.combine import MATERIALIZED_VIEWS, materialize_views
from tldb.staging import dead_runs

#: Scheduler niceness of the build (os.nice increment): below the server, whose first pages
#: come first, and level with the cached render (ondemand.CACHE_NICENESS): until the tables
#: are there a view's page costs seconds (the 406 MB log's `compiles`: 3 s a query), so the
#: build is not left to wait for the whole cached render either.
BUILD_NICENESS = 10
#: Marker in the names of the temporary copies: `.NAME.serving-PID`.
MARK = ".serving-"

#: (st_dev, st_ino): which file a path named when it was looked at.
Identity = tuple[int, int]


def identity(path: Path) -> Identity:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def temporary(db_path: Path, pid: int) -> Path:
    """Where process `pid` builds the serving tables of db_path (hidden: never served)."""
    return db_path.with_name(f".{db_path.name}{MARK}{pid}")


def remove_dead_copies(db_path: Path) -> None:
    """Delete the temporary copies of db_path left by builds whose process is gone."""
    for stale in dead_runs(db_path.parent, f".{db_path.name}{MARK}"):
        if stale.is_file():
            stale.unlink(missing_ok=True)


def lacks_tables(db_path: Path) -> bool:
    """Whether any of the serving tables is still a view in the database at db_path."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(MATERIALIZED_VIEWS))
        sql = f"SELECT 1 FROM sqlite_master WHERE type = 'view' AND name IN ({marks})"
        return conn.execute(sql, MATERIALIZED_VIEWS).fetchone() is not None
    finally:
        conn.close()


def build(db_path: Path, before: Callable[[sqlite3.Connection], None] | None = None) -> bool:
    """Build the serving tables of db_path in a copy and put the copy in its place. False when
    the database changed during the build (a new load of the log, another server's build):
    the copy is then dropped, the database left as the other writer made it. `before(conn)` is
    called on the copy's connection before the tables are made (tests kill the process there,
    or from a progress handler it sets, to try a build stopped midway)."""
    remove_dead_copies(db_path)
    copy = temporary(db_path, os.getpid())
    source = identity(db_path)
    try:
        shutil.copyfile(db_path, copy)
        conn = sqlite3.connect(copy, isolation_level=None)
        try:
            # A private copy renamed into place only when complete: durability buys nothing.
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            if before is not None:
                before(conn)
            materialize_views(conn)
        finally:
            conn.close()
        if identity(db_path) != source:
            copy.unlink()
            return False
        os.replace(copy, db_path)
    except BaseException:
        copy.unlink(missing_ok=True)
        raise
    return True


class TableBuild:
    """The build of one database's serving tables in a forked process, started with the
    server (before it makes threads: see serve.run) and stopped with it."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._process: multiprocessing.process.BaseProcess | None = None
        self._news: Connection | None = None
        #: The file the tables were put in, once the build reported it (None until then).
        self.placed: Identity | None = None

    @classmethod
    def needed(cls, db_path: Path) -> TableBuild | None:
        """A build for db_path if its database lacks serving tables (dead copies removed)."""
        remove_dead_copies(db_path)
        return cls(db_path) if lacks_tables(db_path) else None

    def start(self) -> None:
        if self._process is not None:
            return
        print(
            f"{self.db_path}: building its serving tables in the background "
            "(the views answer until then)",
            file=sys.stderr,
            flush=True,
        )
        context = multiprocessing.get_context("fork")
        self._news, news = context.Pipe(duplex=False)
        self._process = context.Process(target=self._child, args=(news,), daemon=True)
        self._process.start()
        news.close()

    def _child(self, news: Connection) -> None:
        from tldb.serve_workers import die_with_parent

        die_with_parent(os.getppid())  # a killed server leaves no build running for nothing
        # Ctrl-C reaches the whole process group: the server stops the build itself (close).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(OSError, AttributeError):
            os.nice(BUILD_NICENESS)
        started = time.monotonic()
        try:
            placed = build(self.db_path)
        except Exception as exc:  # the server goes on with the views: say why, once
            print(f"Warning: {self.db_path}: serving tables not built: {exc}", file=sys.stderr)
            sys.exit(1)
        if not placed:
            print(
                f"{self.db_path}: changed while its serving tables were built; left as it is",
                file=sys.stderr,
            )
            sys.exit(1)
        news.send(identity(self.db_path))
        seconds = time.monotonic() - started
        print(
            f"{self.db_path}: serving tables built in {seconds:.1f} s, in place",
            file=sys.stderr,
            flush=True,
        )

    def ready(self) -> bool:
        """Whether the tables are in place now (looked at on every request until they are:
        one waitpid while the build runs, which also reaps it when it is over). The file at
        db_path must still be the one the build placed."""
        if self.placed is None and self._news is not None and self._process is not None:
            if self._process.exitcode is None:
                return False
            try:
                if self._process.exitcode == 0 and self._news.poll():
                    self.placed = self._news.recv()
            except (EOFError, OSError):
                pass
            self._news.close()
            self._news = None  # done, or failed (and said why): the views it is
        if self.placed is None:
            return False
        try:
            return identity(self.db_path) == self.placed
        except OSError:
            return False

    def join(self) -> None:
        """Wait for the build to end (tests)."""
        if self._process is not None:
            self._process.join()

    def close(self) -> None:
        """Stop the build if it still runs and remove its copy."""
        process = self._process
        if process is None:
            return
        if process.exitcode is None:
            process.terminate()
        process.join()
        if process.pid is not None:
            temporary(self.db_path, process.pid).unlink(missing_ok=True)
        if self._news is not None:
            self._news.close()
