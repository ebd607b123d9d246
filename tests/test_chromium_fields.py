"""chromium_fields (filled by the loader, begins paired with ends in Python) holds the events
and pairs computed straight from the payloads with json_extract and window functions, and
chromium_spans built on it returns the same rows, in the same order, as that computation.

Checked on real torch 2.13 logs (all in one database: pairing stays within a log) and on a
hand-written log of awkward payloads: duplicate keys, keys and strings with escapes (one not
valid UTF-8 once unescaped), nested keys of the same name, nested values, integers beyond int64,
long decimals, group values that SQLite holds equal (1 and 1.0, a missing and an empty compile
id), invalid and non-object payloads, ends without ts, repeated payloads. Texts are compared as
bytes, exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import LogWriter
from hypothesis import given
from hypothesis import strategies as st

from tldb import chromium_fields
from tldb.loader import build_database

DATA = Path(__file__).parent / "data" / "torch213"
REAL_LOGS = [
    "cache_1.log",
    "dynamo.log",
    "aoti.log.gz",
    "ranks2/dedicated_log_torch_trace_rank_1.log.gz",
]

#: The events and pairs as documented, from the payloads alone: events read with
#: json_extract, the nth B paired with the nth E of its group by window functions.
PAIRED = """
WITH events AS (
    SELECT e.id, e.log_id, coalesce(l.file_rank, e.rank, l.detected_rank) AS rank, e.line,
           e.compile_id, e.frame_id, e.frame_compile_id, e.payload_id,
           json_extract(p.text, '$.name') AS name, json_extract(p.text, '$.ph') AS ph,
           json_extract(p.text, '$.cat') AS cat, json_extract(p.text, '$.ts') AS ts,
           json_extract(p.text, '$.dur') AS dur, json_extract(p.text, '$.pid') AS pid,
           json_extract(p.text, '$.tid') AS tid,
           json_extract(p.text, '$.args.compile_id') AS cid
    FROM envelopes e JOIN payloads p ON p.id = e.payload_id JOIN logs l ON l.id = e.log_id
    WHERE e.kind = 'chromium_event' AND e.status = 'ok'
      AND CASE WHEN json_valid(p.text) THEN json_type(p.text) = 'object' END
), numbered AS (
    SELECT *, row_number() OVER (PARTITION BY log_id, name, pid, tid, coalesce(cid, ''), ph
                                 ORDER BY id) AS n
    FROM events WHERE ph IN ('B', 'E')
), paired AS (
    SELECT *, max(CASE WHEN ph = 'E' THEN ts END) OVER pair AS end_ts,
           max(CASE WHEN ph = 'E' THEN line END) OVER pair AS end_line,
           max(CASE WHEN ph = 'E' THEN payload_id END) OVER pair AS end_payload,
           max(CASE WHEN ph = 'E' THEN id END) OVER pair AS end_id
    FROM numbered WINDOW pair AS (PARTITION BY log_id, name, pid, tid, coalesce(cid, ''), n)
)
"""
#: chromium_spans: paired begins in group order, then the X events in log order.
REFERENCE = (
    PAIRED
    + """
SELECT log_id, rank, compile_id, frame_id, frame_compile_id, cid, name, cat, ts, end_ts - ts,
       line, end_line, (SELECT text -> 'args' FROM payloads WHERE id = end_payload)
FROM paired WHERE ph = 'B' AND end_ts IS NOT NULL
UNION ALL
SELECT log_id, rank, compile_id, frame_id, frame_compile_id, cid, name, cat, ts, dur, line,
       line, (SELECT text -> 'args' FROM payloads WHERE id = payload_id)
FROM events WHERE ph = 'X'
"""
)
#: chromium_fields, by envelope: every B, E and X event, each begin with its end, if any.
EVENTS = (
    PAIRED
    + """
SELECT id, name, ph, cat, ts, dur, pid, tid, cid, CASE WHEN ph = 'B' THEN end_id END
FROM paired
UNION ALL
SELECT id, name, ph, cat, ts, dur, pid, tid, cid, NULL FROM events WHERE ph = 'X'
ORDER BY id
"""
)

#: Payloads where a naive Python reading would not give SQLite's values (raw JSON texts).
TRAPS = [
    '{"name": "dup", "ph": "B", "ts": 1, "pid": 1, "tid": 1, "name": "other"}',
    '{"name": "dup", "ph": "E", "ts": 5, "pid": 1, "tid": 1, "args": {"n": 1}}',
    '{"name": "dph", "ph": "B", "ph": "i", "ts": 2, "pid": 1, "tid": 1}',
    '{"name": "dph", "ph": "E", "ts": 3.5, "pid": 1, "tid": 1}',
    '{"name": "esc", "ph": "\\u0042", "ts": 10, "pid": 1, "tid": 1}',
    '{"name": "es\\u0063", "ph": "E", "ts": 12, "pid": 1, "tid": 1, "args": {"s": "a\\nb"}}',
    '{"n\\u0061me": "escaped_key", "ph": "X", "ts": 1, "dur": 2, "pid": 1, "tid": 1}',
    '{"n\\u0061me": "top", "ph": "X", "ts": 1, "dur": 2, "pid": 1, "tid": 1,'
    ' "args": {"name": "nested"}}',
    '{"name": "outer", "ph": "X", "ts": 3, "dur": 1, "pid": 1, "tid": 1,\n'
    '"args": {"name": "inner", "compile_id": "0/0"}}',
    '{"name": {"a": [1, 2.50]}, "ph": "X", "ts": 4, "dur": 1, "pid": 1, "tid": 1, "cat": ["x", 1e2]}',
    '{"name": "f", "ph": "B", "ts": 1795857007980467.8, "pid": 1.0, "tid": 1, "cat": "c"}',
    '{"name": "f", "ph": "E", "ts": 17119569954326828037.744848140, "pid": 1, "tid": 1}',
    '{"name": "digits", "ph": "X", "ts": 0.1000000000000000055511151231257827, "dur": 1E+2,'
    ' "pid": 1, "tid": 1}',
    '{"name": "big", "ph": "X", "ts": 1, "dur": 9223372036854775808,'
    ' "pid": -9223372036854775808, "tid": 18446744073709551616}',
    '{"name": "lits", "ph": "X", "ts": 1, "dur": -0, "pid": true, "tid": null, "cat": false}',
    '{"name": "strts", "ph": "B", "ts": "100", "pid": 1, "tid": 1}',
    '{"name": "strts", "ph": "E", "ts": "150.5", "pid": 1, "tid": 1}',
    '{"a\\"ph": "B", "name": "not_a_span", "ph": "i", "ts": 1, "pid": 1, "tid": 1}',
    '{"x\\"ph": "i", "name": "quoted_key", "ph": "X", "ts": 1, "dur": 3, "pid": 1, "tid": 1}',
    '{"name": "argstr", "ph": "X", "args": "compile_id", "ts": 1, "dur": 1, "pid": 1, "tid": 1}',
    '{"name": "cid", "ph": "X", "ts": 1, "dur": 1, "pid": 1, "tid": 1,'
    ' "args": {"compile_id": "0/0", "compile_id": "1/0"}}',
    '{"name": "ph", "ph": "X", "ts": 1, "dur": 1, "pid": 1, "tid": 1, "cat": "name"}',
    '{ "name" : "ws" ,"ph":"X","ts":1,\r\n"dur" :\t2,"pid":1,"tid":1 }',
    '{"name": "\u00e9\u540d", "ph": "X", "ts": 1, "dur": 1, "pid": 1, "tid": 1}',
    '{"name": "nots", "ph": "B", "ts": 20, "pid": 1, "tid": 1}',
    '{"name": "nots", "ph": "E", "pid": 1, "tid": 1}',
    '{"name": "trunc", "ph": "B", "ts": 1',
    '["ph", "B"]',
    '"B"',
    '{"name": "repeat", "ph": "X", "ts": 7, "dur": 1, "pid": 1, "tid": 1}',
    '{"name": "repeat", "ph": "X", "ts": 7, "dur": 1, "pid": 1, "tid": 1}',
    '{"name": "trunc", "ph": "E", "ts": 9, "pid": 1, "tid": 1}',
    '{"name": "nullcid", "ph": "B", "ts": 1, "pid": 1, "tid": 1}',
    '{"name": "nullcid", "ph": "E", "ts": 2, "pid": 1, "tid": 1, "args": {"compile_id": ""}}',
    '{"name": "\\ud800", "ph": "B", "ts": 1, "pid": 1, "tid": 1}',
    '{"name": "\\ud800", "ph": "E", "ts": 4, "pid": 1, "tid": 1}',
]


def _traps(tmp_path: Path) -> Path:
    writer = LogWriter()
    for text in TRAPS:
        writer.add({"chromium_event": {}}, text)
    return writer.write(tmp_path / "traps.log")


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> list[sqlite3.Connection]:
    folder = tmp_path_factory.mktemp("fields")
    real = folder / "real.db"
    build_database([DATA / name for name in REAL_LOGS], real, pipelined=False)
    traps = folder / "traps.db"
    build_database([_traps(folder)], traps, pipelined=False)
    conns = [sqlite3.connect(f"file:{path}?mode=ro", uri=True) for path in (real, traps)]
    for conn in conns:
        conn.text_factory = bytes  # exact texts, and no decoding error on the lone surrogate
    yield conns
    for conn in conns:
        conn.close()


def _typed(rows: list[tuple]) -> list[tuple]:
    """Rows with each value's type: 1 and 1.0 compare equal in Python, not here."""
    return [tuple((type(v).__name__, v) for v in row) for row in rows]


@pytest.mark.parametrize("which", [0, 1], ids=["real_logs", "traps"])
def test_fields_are_what_json_extract_reads(databases, which):
    conn = databases[which]
    expected = conn.execute(EVENTS).fetchall()
    got = conn.execute("SELECT * FROM chromium_fields ORDER BY envelope_id").fetchall()
    assert len(expected) >= 20
    assert _typed(got) == _typed(expected)


@pytest.mark.parametrize("which", [0, 1], ids=["real_logs", "traps"])
def test_spans_equal_the_pairing_computed_from_the_payloads(databases, which):
    conn = databases[which]
    expected = conn.execute(REFERENCE).fetchall()
    got = conn.execute("SELECT * FROM chromium_spans").fetchall()
    assert len(expected) > 10
    assert _typed(got) == _typed(expected)


def test_traps_reach_the_view(databases):
    """The trap log's awkward events are in the view, with SQLite's values."""
    names = {row[0] for row in databases[1].execute("SELECT name FROM chromium_spans")}
    kept = {b"dup", b"dph", b"esc", b"f", b"digits", b"big", b"quoted_key", b"cid", b"nullcid"}
    assert kept | {b"strts", b"\xed\xa0\x80"} <= names  # (a lone surrogate, as SQLite keeps it)
    assert b'{"a":[1,2.50]}' in names and None in names  # nested value; key spelled with escapes
    assert not {b"other", b"not_a_span", b"trunc", b"nots"} & names
    (count,) = (
        databases[1].execute("SELECT count(*) FROM chromium_spans WHERE name = 'repeat'").fetchone()
    )
    assert count == 2


@given(st.lists(st.tuples(st.sampled_from([b"B", b"E"]), st.sampled_from([b"a", b"b", 1, 1.0]))))
def test_streamed_pairing_is_the_nth_begin_with_the_nth_end(events):
    """pair() keeps only what is still unpaired; whatever the order (an end before its begin
    too), it must give the nth B of a group the nth E of that group, as the view's window
    numbering did."""
    rows = [(i, ph, name, 0, 0, b"") for i, (ph, name) in enumerate(events)]
    expected = []
    for group in {row[2:] for row in rows}:
        begins = [r[0] for r in rows if r[1] == b"B" and r[2:] == group]
        ends = [r[0] for r in rows if r[1] == b"E" and r[2:] == group]
        expected += list(zip(ends, begins, strict=False))
    assert sorted(chromium_fields.pair(rows)) == sorted(expected)
