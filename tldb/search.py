"""`tldb search`: full-text search over graphs, generated code, guards and stack frames.

The documents are the rows of the `search_documents` view (sql/kinds.sql). The FTS5 index over
them, `search_index`, is an external-content table: it stores only the index, not a second
copy of the text, and reads snippets back from the view. It is built lazily, on the first
search of a database (or with `tldb search --build`), never by `tldb load` or `tldb report`,
so those stay as fast as before. Building writes to the database file.

Cost, measured on 2 shared cores: a 61 MB log (a 3 MB two-rank trace repeated 20 times) gives
2,400 documents, 7.1 MB of text; the index builds in about 0.25 s and adds 4.2 MB (20 %) to
its 21 MB database, while `tldb report` of that log takes 18-30 s. A search of 50 matches with
snippets then takes ~70 ms (the `tldb search` command's ~0.5 s is mostly Python starting up).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from tldb.errors import InputError

INDEX = "search_index"
CREATE = f"""
CREATE VIRTUAL TABLE {INDEX} USING fts5(
    compile_id UNINDEXED, kind UNINDEXED, name, body,
    content='search_documents', content_rowid='envelope_id'
)
"""


@dataclass
class Hit:
    envelope_id: int
    log_id: int
    compile_id: str | None
    kind: str
    name: str
    snippet: str


def has_index(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [INDEX]).fetchone()
    return row is not None


def build_index(path: Path) -> float:
    """(Re)build the FTS index of a database file; return the seconds it took."""
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    try:
        if (
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'search_documents'").fetchone()
            is None
        ):
            raise InputError(f"{path} is too old for search (no search_documents view); reload it")
        with conn:
            conn.execute(f"DROP TABLE IF EXISTS {INDEX}")
            conn.execute(CREATE)
            # Filled with an INSERT rather than FTS5's 'rebuild' command: rebuild reads the view
            # from inside FTS5, where the json_each of the stack documents is refused.
            conn.execute(
                f"INSERT INTO {INDEX}(rowid, compile_id, kind, name, body) "
                "SELECT envelope_id, compile_id, kind, name, body FROM search_documents"
            )
    except sqlite3.OperationalError as exc:
        raise InputError(f"cannot build the search index in {path}: {exc}") from None
    finally:
        conn.close()
    return time.perf_counter() - started


def fts_query(term: str, raw: bool) -> str:
    """The MATCH expression: the term as one phrase, unless raw FTS5 syntax is asked for."""
    if raw:
        return term
    return '"' + term.replace('"', '""') + '"'


def search(conn: sqlite3.Connection, term: str, limit: int = 50, raw: bool = False) -> list[Hit]:
    """Matches of term, best first, with a snippet of the matching text ([...] marks it)."""
    try:
        rows = conn.execute(
            f"""SELECT i.rowid, d.log_id, i.compile_id, i.kind, i.name,
                       snippet({INDEX}, 3, '[', ']', '…', 10)
                FROM {INDEX} i JOIN search_documents d ON d.envelope_id = i.rowid
                WHERE {INDEX} MATCH ? ORDER BY i.rank, i.rowid LIMIT ?""",
            [fts_query(term, raw), limit],
        ).fetchall()
    except sqlite3.OperationalError as exc:
        raise InputError(f"bad search {term!r}: {exc}") from None
    return [Hit(*row) for row in rows]
