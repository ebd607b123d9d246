"""Load logs into a tldb database: the only writer of trace.db.

One pass per log: the reader yields records, the planner numbers the outputs, and rows go to
SQLite in large `executemany` batches inside a single transaction. Payloads are stored once
per distinct text. Nothing is dropped: lines tlparse rejects are rows too.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import sqlite_utils

from tldb import chromium_fields, guard_leaves
from tldb import db as dbmod
from tldb.envelope import compile_id_parts
from tldb.errors import InputError
from tldb.pipeline import open_reader
from tldb.plan import DEFAULT, PAYLOAD, REFORMAT, Output, Planner, compile_dir, compile_key
from tldb.rankfiles import rank_in_name
from tldb.reader import BAD_TYPE, INTERN, OK, OTHER_RANK, Envelope, RawLine
from tldb.registry import plan_extensions
from tldb.stats import Stats

BATCH = 5000
#: Payload text buffered before a flush: rows are few but can be large.
BATCH_BYTES = 8 << 20
#: Keys tlparse adds to each raw.jsonl line; an envelope that already has one is dropped there.
RAW_JSONL_KEYS = ("timestamp", "thread", "pathname", "lineno")

_RAW_JSONL_KEY_SET = frozenset(RAW_JSONL_KEYS)
#: Statuses of the envelopes tlparse writes to raw.jsonl.
_RAW_JSONL_STATUSES = frozenset((OK, OTHER_RANK, BAD_TYPE))

# Row parts read off an envelope or output in one C call each (attrgetter), in column order.
_envelope_head = operator.attrgetter(
    "line", "header", "level", "timestamp", "thread", "pathname", "lineno", "status", "kind", "rank"
)
_envelope_tail = operator.attrgetter("metadata", "has_payload")
_NO_PARTS = (None, None, None, None)
_output_head = operator.attrgetter("mode", "number")
_output_tail = operator.attrgetter(
    "kind",
    "parser",
    "path",
    "path_plain",
    "name",
    "url",
    "suffix",
    "compile_key",
    "compile_dir",
    "readable_path",
)
_NO_OUTPUTS: list[Output] = []

_ENVELOPE_SQL = "INSERT INTO envelopes VALUES (" + ",".join("?" * 24) + ")"
_OUTPUT_SQL = "INSERT INTO outputs VALUES (" + ",".join("?" * 14) + ")"
_GUARD_SQL = "INSERT INTO guard_leaves VALUES (?,?,?,?,?)"
#: Distinct guard trees whose split leaves the load keeps for repeats (see load_log).
GUARD_TREES_KEPT = 64


@dataclass
class LoadResult:
    """What one log's load found (also stored in `logs`)."""

    log_id: int
    path: Path
    stats: Stats
    detected_rank: int | None
    unknown_fields: list[str]
    envelopes: int


class _Batches:
    """Row buffers flushed with executemany: the hot path's only contact with SQLite."""

    def __init__(self, conn):
        self.conn = conn
        self.rows: dict[str, list[tuple]] = {}
        self.sizes: dict[str, int] = {}

    def add(self, sql: str, row: tuple, size: int = 0) -> None:
        """Buffer a row; `size` counts its big values, so that a batch stays small in memory."""
        rows = self.rows.setdefault(sql, [])
        rows.append(row)
        if size:
            self.sizes[sql] = self.sizes.get(sql, 0) + size
        if len(rows) >= BATCH or self.sizes.get(sql, 0) >= BATCH_BYTES:
            self.conn.executemany(sql, rows)
            rows.clear()
            self.sizes[sql] = 0

    def flush(self) -> None:
        for sql, rows in self.rows.items():
            if rows:
                self.conn.executemany(sql, rows)
                rows.clear()


def _saves_payload(env: Envelope, outputs: list[Output]) -> bool:
    """tlparse writes payloads/{has_payload}.txt when no parser saved the payload as a file."""
    return (
        bool(env.payload)
        and env.kind != "chromium_event"
        and not any(o.kind in (PAYLOAD, REFORMAT) for o in outputs if o.mode == DEFAULT)
    )


def _key_conflict(env: Envelope, outputs: list[Output]) -> bool:
    meta = env.meta or {}
    if not _RAW_JSONL_KEY_SET.isdisjoint(meta):
        return True
    if "payload_filename" not in meta:  # the usual case, decided before looking at outputs
        return False
    return env.status == OK and (
        any(o.kind in (PAYLOAD, REFORMAT) for o in outputs if o.mode == DEFAULT)
        or _saves_payload(env, outputs)
    )


def load_log(
    db: sqlite_utils.Database,
    path: Path,
    progress: Callable[[int], None] | None = None,
    pipelined: bool = True,
) -> LoadResult:
    """Load one log into an open database (inside the caller's transaction). `pipelined`
    allows reading a big log in a second process (tldb/pipeline.py)."""
    conn = db.conn
    try:
        stat = path.stat()
        reader, close = open_reader(path, progress, pipelined)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    log_id = (conn.execute("SELECT coalesce(max(id), 0) + 1 FROM logs").fetchone())[0]
    next_envelope = (conn.execute("SELECT coalesce(max(id), 0) + 1 FROM envelopes").fetchone())[0]
    first_envelope = next_envelope
    next_payload = (conn.execute("SELECT coalesce(max(id), 0) + 1 FROM payloads").fetchone())[0]
    payload_ids: dict[str, int] = dict(conn.execute("SELECT md5, id FROM payloads").fetchall())
    planner = Planner(reader.stats, plan_extensions())
    batches = _Batches(conn)
    unknown_seen: dict[str, None] = {}
    envelopes = 0
    # Leaves by payload id: a repeated guard tree is split once. Bounded: a log of thousands
    # of distinct trees (tens of KB each) must not be held whole in memory.
    guards: dict[int, list[tuple]] = {}
    # Envelope and output rows, the bulk of the rows, are buffered here rather than through
    # _Batches: one list append a row instead of a method call and two dict lookups.
    envelope_rows: list[tuple] = []
    output_rows: list[tuple] = []
    records = iter(reader)
    try:
        for record in records:
            if type(record) is RawLine:
                batches.add(
                    "INSERT OR REPLACE INTO lines VALUES (?,?,?,?,?)",
                    (log_id, record.line, record.kind, record.text, record.data),
                )
                continue
            env = record
            envelopes += 1
            payload = env.payload
            payload_id = None
            if payload is not None:
                payload_md5 = env.payload_md5
                payload_id = payload_ids.get(payload_md5)
                if payload_id is None:
                    payload_id = payload_ids[payload_md5] = next_payload
                    next_payload += 1
                    size = len(payload.encode())
                    batches.add(
                        "INSERT INTO payloads VALUES (?,?,?,?)",
                        (payload_id, payload_md5, size, payload),
                        size,
                    )
                if env.payload_bytes is not None:
                    batches.add(
                        "INSERT OR REPLACE INTO lines VALUES (?,?,?,?,?)",
                        (log_id, env.line, "payload_bytes", None, env.payload_bytes),
                    )
            cid = env.compile_id
            meta = env.meta
            status = env.status
            unknown = env.unknown
            for name in unknown:
                unknown_seen.setdefault(name, None)
            envelope_id = next_envelope
            next_envelope += 1
            if env.kind == "dynamo_cpp_guards_str" and status == OK and payload_id is not None:
                if payload_id not in guards:
                    if len(guards) >= GUARD_TREES_KEPT:
                        guards.clear()
                    guards[payload_id] = guard_leaves.leaves(conn, payload)
                for position, leaf in enumerate(guards[payload_id]):
                    batches.add(_GUARD_SQL, (envelope_id, position, *leaf))
            if meta is None:
                key = folder = None
            else:
                key = compile_key(cid)
                folder = compile_dir(cid, env.line)
            envelope_rows.append(
                (
                    envelope_id,
                    log_id,
                    *_envelope_head(env),
                    *(_NO_PARTS if cid is None else compile_id_parts(cid)),
                    key,
                    folder,
                    *_envelope_tail(env),
                    payload_id,
                    env.payload_lines,
                    None if payload is None else int(payload_md5 == env.has_payload),
                    orjson.dumps(unknown).decode() if unknown else None,
                )
            )
            if len(envelope_rows) >= BATCH:
                conn.executemany(_ENVELOPE_SQL, envelope_rows)
                envelope_rows.clear()
            if status == INTERN:
                entry = meta["str"]
                batches.add(
                    "INSERT OR REPLACE INTO strings VALUES (?,?,?,?)",
                    (log_id, entry[1], entry[0], env.line),
                )
            if status == OK and planner.makes_outputs(meta):
                outputs = list(planner.plan(env))
                for out in outputs:
                    output_rows.append(
                        (log_id, *_output_head(out), envelope_id, *_output_tail(out))
                    )
                if len(output_rows) >= BATCH:
                    conn.executemany(_OUTPUT_SQL, output_rows)
                    output_rows.clear()
            else:
                outputs = _NO_OUTPUTS
            raw_jsonl_line = meta is not None and status in _RAW_JSONL_STATUSES
            if raw_jsonl_line and env.kind != "chromium_event" and _key_conflict(env, outputs):
                reader.stats.fail_key_conflict += 1
    finally:
        records.close()  # stops a reader process if the load failed half-way
        close()
    batches.flush()
    for sql, rows in ((_ENVELOPE_SQL, envelope_rows), (_OUTPUT_SQL, output_rows)):
        if rows:
            conn.executemany(sql, rows)
    chromium_fields.load(conn, first_envelope, next_envelope - 1)
    stats = reader.stats
    conn.execute(
        "INSERT INTO logs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            log_id,
            str(path),
            path.name,
            reader.shape.size,
            stat.st_mtime_ns,
            reader.shape.lines,
            reader.shape.eol,
            int(reader.shape.final_newline),
            rank_in_name(path.name),
            reader.expected_rank,
            envelopes,
            orjson.dumps(stats.as_dict()).decode(),
        ),
    )
    return LoadResult(log_id, path, stats, reader.expected_rank, list(unknown_seen), envelopes)


def build_database(
    paths: list[Path],
    target: Path,
    progress: Callable[[int], None] | None = None,
    pipelined: bool = True,
    after: Callable[[sqlite_utils.Database], None] | None = None,
    serving_tables: bool = False,
) -> list[LoadResult]:
    """Load logs into a new database at target, atomically (all or nothing). Callers that
    already keep every core busy (several loads at once) pass pipelined=False. `after(db)`
    reads the finished content on the load's own connection (opening the database again
    costs a schema parse, a few ms that a thousand-rank report pays per rank).

    With serving_tables, the slow views Datasette pages and canned queries read are held as
    tables (combine.materialize_views): a server under many users answers them at once instead
    of computing each for every request. It is not the default: on the 406 MB benchmark log it
    adds about 6 s to a 15 s report and 137 MB to a 93 MB database, which a report read once
    does not need. `tldb serve LOG` (a database made for serving), `tldb load --serving-tables`
    and `tldb report --serving-tables` ask for it. Combining copies a rank database's tables
    like its views, rank by rank (combine._materialize_rank)."""
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path} is not a file")
    results = []
    with dbmod.building(target) as db:
        db.conn.execute("BEGIN")
        for path in paths:
            results.append(load_log(db, path, progress, pipelined))
        db.conn.execute("COMMIT")
        _index(db)
        if serving_tables:
            from tldb.combine import materialize_views

            materialize_views(db.conn)
        if after is not None:
            after(db)
    return results


def _index(db: sqlite_utils.Database) -> None:
    """Indexes for the report's and Datasette's common lookups, built after the bulk load."""
    for sql in (
        "CREATE INDEX envelopes_kind ON envelopes(kind)",
        "CREATE INDEX envelopes_compile ON envelopes(compile_id)",
        "CREATE INDEX envelopes_log_line ON envelopes(log_id, line)",
        "CREATE INDEX outputs_envelope ON outputs(envelope_id)",
        "ANALYZE",
    ):
        db.execute(sql)
