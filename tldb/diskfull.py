"""A file system that fills up during a run: one line for the user, not a traceback.

Writes fail deep inside SQLite (`database or disk is full`), inside a rank worker (the same
exception, sent back) or in a page write (OSError ENOSPC). Whatever was being built is already
left unfinished by then: databases are built under a temporary name and renamed only when
complete (db.py), a report's index page is written last, and a report replacing another with
--overwrite is built beside it and swapped in only when complete (staging.py).
"""

from __future__ import annotations

import errno
import sqlite3

#: errno values that mean "no room left" (quota and file-size limits included).
FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def full_disk_message(exc: BaseException) -> str | None:
    """The one-line message for an exception that means the disk is full, else None."""
    if isinstance(exc, OSError) and exc.errno in FULL:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on the device{where} ({exc.strerror}); nothing was completed"
    if isinstance(exc, sqlite3.Error) and "disk is full" in str(exc):
        return (
            f"no space left on the device while writing a database ({exc}); nothing was completed"
        )
    return None
