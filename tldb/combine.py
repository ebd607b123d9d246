"""Merge per-rank databases into one database with a `rank` column in every table.

Each rank database is attached, copied with `INSERT ... SELECT` and detached before the next
one, so any number of ranks works (SQLite attaches at most 10 databases at a time) and memory
stays at SQLite's page cache whatever the number of ranks: rows never pass through Python.

Layout of the combined database, derived from the rank databases' own schema (so tables other
code adds later are combined too):
- every table gets a first column `rank` (the N of `rank_N`); a column a rank table already
  calls `rank` (envelopes: the envelope's own rank key) is renamed `<table singular>_rank`;
- integer ids (`id INTEGER PRIMARY KEY`) are shifted by the largest id already combined, and
  every column declared `REFERENCES t(id)` is shifted with them, so ids never collide;
- other primary keys get `rank` in front; UNIQUE constraints are dropped (the same payload may
  appear in several ranks);
- indexes and views of the rank databases are re-created; meta rows of the combined database
  itself have rank NULL, and a `rank_database` row per rank says where that rank's database
  is (relative to the combined database's folder);
- payload texts are kept only where cross-rank questions read them (sql/combined_payloads.sql);
  the others are NULL, their text being in the rank databases. At a thousand ranks a full copy
  would add gigabytes of graphs and cache entries that no cross-rank question reads.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from tldb import __version__
from tldb import db as dbmod
from tldb.diskfull import full_disk_message
from tldb.errors import InputError
from tldb.resources import sql_file

_RANK_FOLDER = re.compile(r"rank_([0-9]+)")


@dataclass
class _Table:
    name: str
    columns: list[str]  # names in the rank databases
    rowid: str | None  # the `INTEGER PRIMARY KEY` column, if any
    references: dict[str, str] = field(default_factory=dict)  # column -> table it points to

    def combined_name(self, column: str) -> str:
        if column != "rank":
            return column
        return f"{self.name[:-1] if self.name.endswith('s') else self.name}_rank"


@dataclass
class CombineResult:
    target: Path
    ranks: list[int]
    rows: dict[str, int]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rank_of(path: Path) -> int:
    """The rank of a rank database: its log's file-name rank, else a `rank_N` parent folder,
    else the rank its envelopes carry."""
    db = dbmod.open_readonly(path)
    try:
        rows = db.conn.execute("SELECT file_rank, detected_rank FROM logs").fetchall()
    finally:
        db.conn.close()
    for column in (0, None, 1):
        if column is None:
            found = _RANK_FOLDER.fullmatch(path.resolve().parent.name)
            values = {int(found.group(1))} if found else set()
        else:
            values = {row[column] for row in rows}
        if len(values) == 1 and None not in values:
            return values.pop()
    raise InputError(
        f"cannot tell the rank of {path}: its log names none (dedicated_log_torch_trace_rank_N), "
        "it is not in a rank_N folder and its envelopes carry no single rank"
    )


#: Tables the load fills only for views of PER_RANK_VIEWS to read (chromium_spans, guards):
#: the combined database holds those views as tables already, so nothing there reads them.
VIEW_INPUTS = ("chromium_fields", "guard_leaves")


def _tables(conn: sqlite3.Connection, schema: str) -> list[_Table]:
    """The tables of a rank database to copy: not the views a load held as tables
    (materialize_views): derived rows, read rank by rank (_materialize_rank) or computed
    again over all ranks (materialize_views); nor VIEW_INPUTS."""
    names = [
        r[0]
        for r in conn.execute(
            f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
        if r[0] not in MATERIALIZED_VIEWS and r[0] not in VIEW_INPUTS
    ]
    tables = []
    for name in names:
        info = conn.execute(f"PRAGMA {schema}.table_info({_quote(name)})").fetchall()
        pks = [r for r in info if r[5]]
        rowid = pks[0][1] if len(pks) == 1 and pks[0][2].upper() == "INTEGER" else None
        table = _Table(name, [r[1] for r in info], rowid)
        for fk in conn.execute(f"PRAGMA {schema}.foreign_key_list({_quote(name)})"):
            table.references[fk[3]] = fk[2]
        tables.append(table)
    return tables


#: (table, column) whose values the combined database keeps only for the rows the SQL file
#: selects (by id); the others are NULL.
THINNED = {("payloads", "text"): "combined_payloads.sql"}


def _create(conn: sqlite3.Connection, schema: str, table: _Table) -> None:
    """The combined table: `rank` first, the rank table's columns, primary key with rank."""
    info = conn.execute(f"PRAGMA {schema}.table_info({_quote(table.name)})").fetchall()
    parts = ["rank INTEGER"]
    for _, column, ctype, notnull, _, _ in info:
        spec = f"{_quote(table.combined_name(column))} {ctype}".rstrip()
        if column == table.rowid:
            spec += " PRIMARY KEY"
        elif notnull and (table.name, column) not in THINNED:
            spec += " NOT NULL"
        if column in table.references:
            spec += f" REFERENCES {_quote(table.references[column])}(id)"
        parts.append(spec)
    pk = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
    if pk and table.rowid is None:
        parts.append(f"PRIMARY KEY (rank, {', '.join(_quote(table.combined_name(c)) for c in pk)})")
    conn.execute(f"CREATE TABLE main.{_quote(table.name)} ({', '.join(parts)})")


@functools.cache
def shipped_views() -> dict[str, str]:
    """The CREATE VIEW statement of every view of tldb's schema (sql/*.sql), by name."""
    conn = sqlite3.connect(":memory:")
    try:
        for name in dbmod.SQL_FILES:
            conn.executescript(sql_file(name))
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
    finally:
        conn.close()


#: Page cache of the combining connection, in KiB. SQLite's sorter (CREATE INDEX, ORDER BY,
#: window partitions) may hold as much again before it spills to temporary files, so this
#: bounds the combining process's memory whatever the number of ranks. Measured on 1,024
#: ranks: with 32 MiB the indexes took the process from 58 to 91 MB and the whole combine
#: peaked at 107 MB (70 MB at 64 ranks); with 4 MiB it stays near 40 MB and is no slower
#: (rows are appended in order, so few pages are read twice).
CACHE_KIB = 4096


def _check_source(path: Path) -> None:
    dbmod.open_readonly(path).conn.close()  # raises a clear error for foreign or partial files


def combine(sources: list[tuple[int, Path]], target: Path, checked: bool = False) -> CombineResult:
    """Build `target` from (rank, database) pairs, atomically (a temporary file renamed).

    Each source is first opened on its own, so that a foreign, partial or older database is
    named in a clear error before any work; `checked` skips that for sources the caller has
    just built and recorded complete (a many-rank report's own steps): the extra open parses
    the whole schema again, a few ms a rank."""
    if not sources:
        raise InputError("no rank databases to combine")
    ranks = [rank for rank, _ in sources]
    duplicates = sorted({r for r in ranks if ranks.count(r) > 1})
    if duplicates:
        raise InputError(f"several databases for rank(s) {', '.join(map(str, duplicates))}")
    if not checked:
        for _, path in sources:
            _check_source(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None, uri=True)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        known: dict[str, _Table] = {}
        extras: dict[str, str] = {}  # index and view SQL of the rank databases, by name
        for rank, path in sorted(sources):
            try:
                _copy_rank(conn, rank, path, known, extras)
            except sqlite3.DatabaseError as exc:  # a file changed since it was checked...
                if full_disk_message(exc) is not None:
                    raise  # ...but not a full disk: its callers know that one (diskfull)
                raise InputError(f"{path}: cannot combine it ({exc})") from None
        _finish(conn, extras, sorted(sources), target)
        rows = {
            name: conn.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0]
            for name in known
        }
        conn.close()
        os.replace(tmp, target)
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    return CombineResult(target, sorted(ranks), rows)


def _copy_rank(
    conn: sqlite3.Connection, rank: int, path: Path, known: dict[str, _Table], extras: dict
) -> None:
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    conn.execute("ATTACH DATABASE ? AS r", [uri])
    try:
        tables = _tables(conn, "r")
        for _kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM r.sqlite_master WHERE type IN ('index', 'view') "
            "AND sql IS NOT NULL ORDER BY rowid"
        ):
            extras.setdefault(name, sql)
        for (name,) in conn.execute(
            "SELECT name FROM r.sqlite_master WHERE type = 'table'"
        ).fetchall():
            if name in MATERIALIZED_VIEWS:  # held as a table by the load: the view it was
                extras.setdefault(name, shipped_views()[name])
        offsets: dict[str, int] = {}
        for table in tables:
            if table.name not in known:
                _create(conn, "r", table)
                known[table.name] = table
            elif known[table.name].columns != table.columns:
                raise InputError(f"{path}: table {table.name} has other columns than rank 0's")
            if table.rowid:
                offsets[table.name] = conn.execute(
                    f"SELECT coalesce(max({_quote(table.rowid)}), 0) FROM main.{_quote(table.name)}"
                ).fetchone()[0]
        conn.execute("BEGIN")
        for table in tables:
            targets, values = ["rank"], [str(int(rank))]
            for column in table.columns:
                targets.append(_quote(table.combined_name(column)))
                shift = offsets.get(table.name) if column == table.rowid else None
                if column in table.references:
                    shift = offsets.get(table.references[column], 0)
                if (table.name, column) in THINNED:
                    kept = sql_file(THINNED[table.name, column])
                    values.append(
                        f"CASE WHEN {_quote(table.rowid or 'rowid')} IN ({kept}) "
                        f"THEN {_quote(column)} END"
                    )
                    continue
                values.append(f"{_quote(column)} + {shift}" if shift else _quote(column))
            conn.execute(
                f"INSERT INTO main.{_quote(table.name)} ({', '.join(targets)}) "
                f"SELECT {', '.join(values)} FROM r.{_quote(table.name)}"
            )
        _materialize_rank(conn, rank, offsets)
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("DETACH DATABASE r")


#: Views the combined database holds as tables, computed once when it is built, in this
#: order (a later one may read an earlier one). Over a thousand ranks each is seconds to tens of
#: seconds of JSON and window functions (`compiles` 4 s, `chromium_spans` over 20 s), so every
#: canned query reading them would miss Datasette's time limit; as tables they answer at once.
MATERIALIZED_VIEWS = (
    "metrics",
    "compiles",
    "recompiles",
    "cache_events",
    "guards",
    "collectives",
    "chromium_spans",
    # Small, but computed on every read: 0.19 s (graph_breaks, even with no rows: it scans the
    # artifacts) and 0.42 s (envelope_kinds, a GROUP BY over every envelope) for each table
    # page, count and facet of the served 406 MB log, the first request of each URL.
    "graph_breaks",
    "envelope_kinds",
)
#: Those of MATERIALIZED_VIEWS without a rank column: counts over every rank's rows together.
AGGREGATE_VIEWS = ("envelope_kinds",)
#: Views of the rank databases left out of the combined one: they read payload texts it does
#: not keep (sql/combined_payloads.sql), so they would be silently empty there.
RANK_ONLY_VIEWS = ("chromium_events",)
#: Those of MATERIALIZED_VIEWS computed rank by rank in the rank databases (_materialize_rank):
#: the views that read no other materialized view.
PER_RANK_VIEWS = ("metrics", "cache_events", "guards", "collectives", "chromium_spans")
#: The other MATERIALIZED_VIEWS, computed rank by rank too but over the combined tables, each
#: restricted to the rank's own rows (_derive_rank): they read `metrics` and `cache_events`,
#: which in a rank database are views they would compute again. Over all ranks at once,
#: `compiles` grouped every envelope of every rank in one sort: 6 s and 13 MB more memory in
#: the combining process at 1,024 ranks. Their groups never span two logs, so the rows are
#: the same.
DERIVED_VIEWS = ("compiles", "recompiles")
#: The combined tables DERIVED_VIEWS read, besides `logs` and `payloads` (read by id).
_DERIVED_INPUTS = ("envelopes", "metrics", "cache_events")


def _materialize_rank(conn: sqlite3.Connection, rank: int, offsets: dict[str, int]) -> None:
    """Add the rows of each of PER_RANK_VIEWS, computed in the attached rank database, to
    the combined table of that name (created from the first rank that has the view).

    Computing them rank by rank, not once over all ranks at the end, keeps each view's sorts
    and window partitions one rank big, so the combining process's memory does not grow with
    the number of ranks, and the view reads the rank's payload texts where they are, so the
    combined database need not keep texts only these views read. A view's `rank` column is
    the rank being combined (over the combined tables it always was: `coalesce(file_rank,
    rank, ...)` there finds this rank), and an id column `<table>_id` of a table with shifted
    ids is shifted with it."""
    # A view, or the table a single-log load made of it (loader: materialize_views).
    views = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM r.sqlite_master WHERE type IN ('view', 'table')"
        )
    }
    firsts = {"envelopes": offsets.get("envelopes", 0)}  # ids were shifted past the last one
    for name in PER_RANK_VIEWS:
        if name not in views:
            continue
        target = f"main.{_quote(name)}"
        if not conn.execute(
            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?", [name]
        ).fetchone():
            conn.execute(f"CREATE TABLE {target} AS SELECT * FROM r.{_quote(name)} WHERE 0")
        columns = [row[1] for row in conn.execute(f"PRAGMA r.table_info({_quote(name)})")]
        values = []
        for column in columns:
            shift = offsets.get(f"{column[:-3]}s") if column.endswith("_id") else None
            if column == "rank":
                values.append(str(int(rank)))
            elif shift:
                values.append(f"{_quote(column)} + {shift}")
            else:
                values.append(_quote(column))
        firsts[name] = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {target}").fetchone()[0]
        conn.execute(
            f"INSERT INTO {target} ({', '.join(map(_quote, columns))}) "
            f"SELECT {', '.join(values)} FROM r.{_quote(name)}"
        )
    _derive_rank(conn, firsts)


def _derive_rank(conn: sqlite3.Connection, firsts: dict[str, int]) -> None:
    """Add the rank's rows of DERIVED_VIEWS to their combined tables: each view, as shipped,
    runs over temporary views that hold only this rank's rows of the tables it reads (rows
    after `firsts[table]`, the largest rowid before this rank's were added: a range, not a
    scan of every rank's rows). Skipped when an input table is missing (a rank database
    without the views): materialize_views then computes them over all ranks at the end."""
    present = {
        name for (name,) in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")
    }
    if not set(_DERIVED_INPUTS) <= present or not set(_DERIVED_INPUTS) <= set(firsts):
        return
    try:
        for name in _DERIVED_INPUTS:
            conn.execute(
                f"CREATE TEMP VIEW {_quote(name)} AS SELECT * FROM main.{_quote(name)} "
                f"WHERE rowid > {int(firsts[name])}"
            )
        for name in DERIVED_VIEWS:
            body = shipped_views()[name].split(" AS", 1)[1]
            source = f"temp.{_quote('rank_' + name)}"
            conn.execute(f"CREATE TEMP VIEW {source} AS{body}")
            if name not in present:
                conn.execute(f"CREATE TABLE main.{_quote(name)} AS SELECT * FROM {source} WHERE 0")
            conn.execute(f"INSERT INTO main.{_quote(name)} SELECT * FROM {source}")
    finally:
        for name in (*(f"rank_{view}" for view in DERIVED_VIEWS), *_DERIVED_INPUTS):
            conn.execute(f"DROP VIEW IF EXISTS temp.{_quote(name)}")


def materialize_views(conn: sqlite3.Connection) -> None:
    """Replace each of MATERIALIZED_VIEWS still a view by a table of its rows, under the same
    name (views reading it then read the table). Run at the end of a combine (for those no
    rank computed), and on every single-log database at load time (loader.build_database),
    for the same reason: Datasette pages and canned queries over these views took seconds
    each on a 400 MB log, and requests queued behind them."""
    conn.execute("PRAGMA legacy_alter_table = ON")  # rename without re-checking other views
    for name in MATERIALIZED_VIEWS:
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ?", [name]
        ).fetchone():
            continue
        scratch = _quote(f"materialized_{name}")
        conn.execute(f"CREATE TABLE {scratch} AS SELECT * FROM {_quote(name)}")
        conn.execute(f"DROP VIEW {_quote(name)}")
        conn.execute(f"ALTER TABLE {scratch} RENAME TO {_quote(name)}")


def _finish(
    conn: sqlite3.Connection, extras: dict[str, str], sources: list[tuple[int, Path]], target: Path
) -> None:
    """Indexes and views of the rank databases (those that still make sense), the views
    queries need fast as tables, and meta."""
    ranks = [rank for rank, _ in sources]
    for name, sql in extras.items():
        if name in RANK_ONLY_VIEWS:
            continue
        try:
            conn.execute(sql)
        except sqlite3.Error:
            continue  # an index or view on a column the combined layout renamed
    materialize_views(conn)
    conn.executemany(
        "INSERT INTO meta (rank, key, value) VALUES (NULL, ?, ?)",
        [
            ("schema_version", dbmod.SCHEMA_VERSION),
            ("tldb_version", __version__),
            ("combined_ranks", ",".join(map(str, ranks))),
            ("load_complete", "1"),
        ],
    )
    folder = target.resolve().parent
    conn.executemany(
        "INSERT INTO meta (rank, key, value) VALUES (?, 'rank_database', ?)",
        [(rank, os.path.relpath(path.resolve(), folder)) for rank, path in sources],
    )
    conn.execute("ANALYZE")
