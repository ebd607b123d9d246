"""Creating, finishing and opening tldb databases.

A database is built in a temporary file beside its final name and renamed into place only when
the load has finished, so a killed load never leaves a file that looks complete, and a running
Datasette never sees a half-written one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from tldb import __version__
from tldb.errors import IncompleteDatabaseError, InputError, SchemaVersionError
from tldb.resources import sql_file

SCHEMA_VERSION = "11"  # bump whenever schema.sql, views.sql, kinds.sql or vllm.sql change
#: SQL files run on a new database, in order: tables, then views over them.
SQL_FILES = ("schema.sql", "views.sql", "kinds.sql", "vllm.sql")


@functools.cache
def _empty_database() -> bytes:
    """The bytes of a database holding the schema and nothing else, built once per process.

    Running the schema scripts costs ~20 ms (hundreds of tables, indexes and views to parse);
    a many-rank report creates a database per rank, so each starts as a copy of these bytes.
    """
    with tempfile.TemporaryDirectory(prefix="tldb-schema-") as folder:
        path = Path(folder) / "empty.db"
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            # A scratch file read back at once: without these, each of the hundreds of
            # statements commits on its own and waits for the disk (fdatasync), seconds per
            # process where the disk is slow.
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.executescript(
                "BEGIN;\n" + "\n".join(sql_file(name) for name in SQL_FILES) + "\nCOMMIT;"
            )
        finally:
            conn.close()
        return path.read_bytes()


def create(path: Path) -> sqlite_utils.Database:
    """A new, empty database at path (replacing any file there), tuned for one bulk load."""
    path.unlink(missing_ok=True)
    path.write_bytes(_empty_database())
    conn = sqlite3.connect(path, isolation_level=None)
    # The file is a temporary build product renamed into place at the end: a crash loses
    # nothing that a re-run cannot rebuild, so durability is traded for speed.
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -16384")  # 16 MiB: appends need little; memory stays flat
    return sqlite_utils.Database(conn)


def finish(db: sqlite_utils.Database) -> None:
    """Mark the database complete, with the versions that wrote it."""
    db.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES "
        "('schema_version', ?), ('tldb_version', ?), ('load_complete', '1')",
        [SCHEMA_VERSION, __version__],
    )


@contextlib.contextmanager
def building(target: Path) -> Iterator[sqlite_utils.Database]:
    """Build a database in a temporary file and move it to target only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    db = create(tmp)
    try:
        yield db
        finish(db)
        db.conn.close()
        os.replace(tmp, target)
    except BaseException:
        db.conn.close()
        tmp.unlink(missing_ok=True)
        raise


def open_readonly(path: Path) -> sqlite_utils.Database:
    """Open a finished database for reading; refuse incomplete or foreign ones clearly."""
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise InputError(f"{path} is not a tldb database ({exc})") from None
    if rows.get("schema_version") != SCHEMA_VERSION:
        conn.close()
        raise SchemaVersionError(
            f"{path} has schema version {rows.get('schema_version')}, this tldb reads "
            f"{SCHEMA_VERSION}; rebuild it with `tldb load`"
        )
    if rows.get("load_complete") != "1":
        conn.close()
        raise IncompleteDatabaseError(
            f"{path} is from a load that did not finish; load the log again"
        )
    return sqlite_utils.Database(conn)


def is_database(path: Path) -> bool:
    """True when path starts with the SQLite file header."""
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
