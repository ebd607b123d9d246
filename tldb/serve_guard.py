"""Limits on what one ad-hoc query can cost the server, applied to every Datasette connection.

Datasette refuses anything but SELECT and opens tldb's databases immutable, and its time limit
(sql_time_limit_ms) stops a query between two steps of SQLite's virtual machine. What that
leaves open is a single function call that runs long or allocates a lot inside one step, which
no time limit interrupts: `randomblob(1e9)` allocates a gigabyte, `printf('%.*c', 2e9, 'x')`
loops for 16 s in SQLite 3.40, and `fts3_tokenizer('simple')` returns a pointer of the
server's memory. So every connection gets:

- a cap on the size of any string or blob (SQLITE_LIMIT_LENGTH): larger values are refused
  with "string or blob too big", whether made by a query or read from the database (the
  report's own pages still show such a payload: they are files, not queries);
- a cap on SQL text length and on attached databases (none: ATTACH is refused anyway);
- an authorizer that refuses functions that leak memory addresses or load code;
- printf/format that refuse a width or precision that no page could show.
"""

from __future__ import annotations

import re
import sqlite3
import threading

#: Largest string or blob one query may make or read (bytes).
MAX_VALUE_BYTES = 64 << 20
#: Longest SQL text accepted (bytes); canned queries are a few KB.
MAX_SQL_BYTES = 100_000
#: Largest printf/format width or precision (characters).
MAX_PRINTF_WIDTH = 100_000
#: Functions refused outright: they load code or hand out pointers.
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "fts5"})

_SPEC = re.compile(r"%([-+ 0#,!]*)(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")
_helper = threading.local()


def guard_connection(conn: sqlite3.Connection) -> None:
    """Apply the limits above to one connection (called by Datasette for each it opens)."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_authorize)
    for name in ("printf", "format"):
        conn.create_function(name, -1, _bounded_printf, deterministic=True)


def _authorize(action: int, arg1, arg2, database, trigger) -> int:
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _check_widths(fmt: str, args: tuple) -> None:
    """Refuse a width or precision above MAX_PRINTF_WIDTH, given literally or as a `*` argument."""
    position = 0
    for _flags, width, precision, conversion in _SPEC.findall(fmt):
        for part in (width, precision):
            if part == "*":
                value = args[position] if position < len(args) else 0
                position += 1
                if isinstance(value, int | float) and abs(value) > MAX_PRINTF_WIDTH:
                    raise ValueError("printf width or precision too large")
            elif part and int(part) > MAX_PRINTF_WIDTH:
                raise ValueError("printf width or precision too large")
        if conversion != "%":
            position += 1


def _bounded_printf(fmt=None, *args):
    """SQLite's own printf (run on a private in-memory connection) after the width check."""
    if fmt is None:
        return None
    text = fmt if isinstance(fmt, str) else str(fmt)
    _check_widths(text, args)
    helper = getattr(_helper, "conn", None)
    if helper is None:
        helper = sqlite3.connect(":memory:")
        helper.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        _helper.conn = helper
    marks = ", ".join("?" * (len(args) + 1))
    return helper.execute(f"SELECT printf({marks})", (text, *args)).fetchone()[0]
