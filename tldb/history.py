"""Run history: one row per run in a small SQLite file (`history.db`), never the payloads.

`tldb history add RUN` stores what a run did (compiles, graph breaks, recompiles, failures,
cache outcomes, compile time per phase, torch version, when it ran) under a key computed from
the run's envelopes, so adding the same run again changes nothing. `tldb history show` prints
the runs and writes a static page with inline SVG charts (no script, no network: it opens from
a file, offline, in CI artifacts). `tldb serve history.db` shows the tables in Datasette, with
the `history` block of datasette_metadata.yml.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tldb import db as dbmod
from tldb.errors import InputError
from tldb.runfacts import hit_rate, read_facts
from tldb.runs import Run, only_log

#: Marks a history database (and its layout version) in history_meta.
HISTORY_SCHEMA = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS history_meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    run_key TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    source TEXT NOT NULL,
    started_at TEXT,
    added_at TEXT NOT NULL,
    torch_version TEXT,
    ranks INTEGER NOT NULL,
    compiles INTEGER NOT NULL,
    graph_breaks INTEGER NOT NULL,
    recompiles INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    cache_hits INTEGER NOT NULL,
    cache_misses INTEGER NOT NULL,
    cache_bypasses INTEGER NOT NULL,
    cache_hit_rate REAL,
    compile_seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS run_phases (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    phase TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, phase)
);
CREATE TABLE IF NOT EXISTS run_caches (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    cache TEXT NOT NULL,
    hits INTEGER NOT NULL,
    misses INTEGER NOT NULL,
    bypasses INTEGER NOT NULL,
    hit_rate REAL,
    PRIMARY KEY (run_id, cache)
);
CREATE VIEW IF NOT EXISTS run_trends AS
SELECT id, label, started_at, compile_seconds,
       lag(compile_seconds) OVER w AS previous_compile_seconds,
       graph_breaks, lag(graph_breaks) OVER w AS previous_graph_breaks,
       recompiles, lag(recompiles) OVER w AS previous_recompiles,
       cache_hit_rate, lag(cache_hit_rate) OVER w AS previous_cache_hit_rate
FROM runs WINDOW w AS (ORDER BY id);
"""
#: Runs in the order they were added: CI adds each run as it finishes, and a history filled
#: in later is filled in the order its author chose (started_at says when each one ran).
RUN_ORDER = "ORDER BY id"


@dataclass
class Summary:
    """A run's row of `runs`, and its phases and caches."""

    run_key: str
    label: str
    source: str
    started_at: str | None
    torch_version: str | None
    ranks: int
    compiles: int
    graph_breaks: int
    recompiles: int
    failures: int
    cache_hits: int
    cache_misses: int
    cache_bypasses: int
    cache_hit_rate: float | None
    compile_seconds: float
    phases: dict[str, float]
    caches: dict[str, Counter]


def _log_key(conn: sqlite3.Connection, log_id: int) -> str:
    """A digest of what the log says (envelope headers, metadata, payload digests): the same
    log gives the same key whether it is given as a log, a database or a report folder."""
    digest = hashlib.sha256()
    rows = conn.execute(
        "SELECT e.header, e.metadata, p.md5 FROM envelopes e "
        "LEFT JOIN payloads p ON p.id = e.payload_id WHERE e.log_id = ? ORDER BY e.id",
        [log_id],
    )
    for header, metadata, md5 in rows:
        digest.update(f"{header}\x1f{metadata}\x1f{md5}\x1e".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def summarize(run: Run, label: str | None = None) -> Summary:
    """The summary of an opened run, over all its ranks."""
    keys, all_facts = [], []
    for rank in sorted(run.databases, key=lambda r: r or 0):
        path = run.databases[rank]
        database = dbmod.open_readonly(path)
        try:
            log_id = only_log(database.conn, path)
            all_facts.append(read_facts(database.conn, log_id))
            keys.append(f"{rank}:{_log_key(database.conn, log_id)}")
        finally:
            database.conn.close()
    caches: dict[str, Counter] = {}
    phases: Counter = Counter()
    for facts in all_facts:
        for cache, counts in facts.caches.items():
            caches.setdefault(cache, Counter()).update(counts)
        phases.update(facts.phases)
    total: Counter = Counter()
    for counts in caches.values():
        total.update(counts)
    started = [f.started_us for f in all_facts if f.started_us is not None]
    when = (
        dt.datetime.fromtimestamp(min(started) / 1e6, dt.UTC).isoformat(timespec="seconds")
        if started
        else None
    )
    source = Path(run.label)
    return Summary(
        run_key=hashlib.sha256("\n".join(keys).encode()).hexdigest(),
        label=label or source.name,
        source=str(source),
        started_at=when,
        torch_version=next((f.torch_version for f in all_facts if f.torch_version), None),
        ranks=len(all_facts),
        compiles=sum(len(f.compiles) for f in all_facts),
        graph_breaks=sum(sum(f.graph_breaks.values()) for f in all_facts),
        recompiles=sum(sum(sum(r.values()) for r in f.recompiles.values()) for f in all_facts),
        failures=sum(sum(f.failures.values()) for f in all_facts),
        cache_hits=total["hit"],
        cache_misses=total["miss"],
        cache_bypasses=total["bypass"],
        cache_hit_rate=hit_rate(total),
        compile_seconds=sum(f.compile_seconds for f in all_facts),
        phases=dict(phases),
        caches=caches,
    )


def is_history(path: Path) -> bool:
    """True for a history database (it has history_meta saying so)."""
    if not (path.is_file() and dbmod.is_database(path)):
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute("SELECT value FROM history_meta WHERE key = 'history_schema'").fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return row is not None


def open_history(path: Path, create: bool) -> sqlite3.Connection:
    """A history database, created when asked; refuses other SQLite files (a trace.db)."""
    if path.exists():
        if not is_history(path):
            raise InputError(f"{path} is not a tldb history database")
    elif not create:
        raise InputError(f"{path} does not exist (tldb history add creates it)")
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute(
        "INSERT OR IGNORE INTO history_meta(key, value) VALUES ('history_schema', ?)",
        [HISTORY_SCHEMA],
    )
    conn.commit()
    return conn


def add_run(history: Path, summary: Summary) -> tuple[int, bool]:
    """Store a run's summary; returns its id and whether it was new (the same run again is a
    no-op, whatever its label)."""
    conn = open_history(history, create=True)
    try:
        found = conn.execute("SELECT id FROM runs WHERE run_key = ?", [summary.run_key]).fetchone()
        if found:
            return found[0], False
        added = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with conn:
            cursor = conn.execute(
                "INSERT INTO runs(run_key, label, source, started_at, added_at, torch_version, "
                "ranks, compiles, graph_breaks, recompiles, failures, cache_hits, cache_misses, "
                "cache_bypasses, cache_hit_rate, compile_seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    summary.run_key,
                    summary.label,
                    summary.source,
                    summary.started_at,
                    added,
                    summary.torch_version,
                    summary.ranks,
                    summary.compiles,
                    summary.graph_breaks,
                    summary.recompiles,
                    summary.failures,
                    summary.cache_hits,
                    summary.cache_misses,
                    summary.cache_bypasses,
                    summary.cache_hit_rate,
                    summary.compile_seconds,
                ],
            )
            run_id = cursor.lastrowid
            conn.executemany(
                "INSERT INTO run_phases(run_id, phase, seconds) VALUES (?, ?, ?)",
                [(run_id, phase, seconds) for phase, seconds in sorted(summary.phases.items())],
            )
            conn.executemany(
                "INSERT INTO run_caches(run_id, cache, hits, misses, bypasses, hit_rate) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run_id, cache, c["hit"], c["miss"], c["bypass"], hit_rate(c))
                    for cache, c in sorted(summary.caches.items())
                ],
            )
        return run_id, True
    finally:
        conn.close()


def read_runs(history: Path) -> list[dict]:
    """Every run of a history, in the order they were added, as dicts of `runs` columns."""
    conn = open_history(history, create=False)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM runs {RUN_ORDER}")]
    finally:
        conn.close()
