"""The chromium_event fields chromium_spans needs, read once at load time (table chromium_fields).

WHY: the chromium_spans view read each event's name, ph, ts... with json_extract over every
chromium_event payload and paired begins with ends with two window passes, each time it was
read: ~24 ms a 2.5 MB rank, a third of a many-rank combine (which computes it for every rank),
and again for every `--serving-tables` load. The loader now does both once, right after a log's
rows are in: the fields with SQLite's own json_extract (so the values are by construction what
the view read before: types, float rounding, duplicate keys, escapes), the pairing in Python
over those values (a dictionary pass, cheaper than SQLite's two sorts).

Reading the payloads in Python with orjson was tried first: making its values provably equal
to json_extract's (duplicate keys, escaped keys, nested values, float tokens) took a regex pass
over every payload besides the parse, and cost more than SQLite's one parse per payload.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections import deque
from collections.abc import Iterable, Iterator

#: The events of one log's envelope id range, with their fields as the view used to read them:
#: accepted chromium_event envelopes whose payload is a JSON object of phase B, E or X (a
#: payload that is not an object has no $.ph). Each distinct payload is parsed once (a big log
#: repeats a few hundred payloads tens of thousands of times): its first json_* call parses
#: it, the others find that parse in SQLite's cache, and only B, E and X events have their
#: other fields read (each read copies the text: half the bytes are instant events).
_INSERT_SQL = """
WITH events AS (
    SELECT id, payload_id FROM envelopes
    WHERE id BETWEEN ?1 AND ?2 AND kind = 'chromium_event' AND status = 'ok'
), parsed AS MATERIALIZED (
    SELECT p.id, json_extract(p.text, '$.name') AS name, json_extract(p.text, '$.ph') AS ph,
           json_extract(p.text, '$.cat') AS cat, json_extract(p.text, '$.ts') AS ts,
           json_extract(p.text, '$.dur') AS dur, json_extract(p.text, '$.pid') AS pid,
           json_extract(p.text, '$.tid') AS tid,
           json_extract(p.text, '$.args.compile_id') AS event_compile_id
    FROM payloads p
    WHERE p.id IN (SELECT payload_id FROM events)
      AND json_valid(p.text) AND json_extract(p.text, '$.ph') IN ('B', 'E', 'X')
)
INSERT INTO chromium_fields (envelope_id, name, ph, cat, ts, dur, pid, tid, event_compile_id)
SELECT e.id, x.name, x.ph, x.cat, x.ts, x.dur, x.pid, x.tid, x.event_compile_id
FROM events e JOIN parsed x ON x.id = e.payload_id
ORDER BY e.id
"""

_GROUPS_SQL = """
SELECT envelope_id, ph, name, pid, tid, coalesce(event_compile_id, '') FROM chromium_fields
WHERE envelope_id BETWEEN ? AND ? AND ph IN ('B', 'E') ORDER BY envelope_id
"""


def pair(begins_and_ends: Iterable[tuple]) -> Iterator[tuple[int, int]]:
    """(end envelope, begin envelope) for each begin with an end: the nth B with the nth E of
    the same (name, pid, tid, compile id) group, given (envelope, ph, *group) rows in log
    order. Group values compare as in SQLite when texts are bytes: 1 and 1.0 alike, texts
    byte for byte.

    Streamed: each group keeps only its events still unpaired, in order (all begins or all
    ends, never both): the next event of the other phase pairs with the oldest of them, which
    is the nth-with-nth rule. Memory stays what is unpaired, not every event of the log."""
    waiting: dict[tuple, tuple[bytes, deque[int]]] = {}
    for envelope_id, ph, *group in begins_and_ends:
        key = tuple(group)
        found = waiting.get(key)
        if found is None:
            waiting[key] = (ph, deque([envelope_id]))
        elif found[0] == ph:
            found[1].append(envelope_id)
        else:
            other = found[1].popleft()
            if not found[1]:
                del waiting[key]
            yield (envelope_id, other) if ph != b"B" else (other, envelope_id)


def load(conn: sqlite3.Connection, first_envelope: int, last_envelope: int) -> None:
    """Fill chromium_fields for the envelopes of one log (ids first..last, a log's own range:
    pairs never span logs)."""
    conn.execute(_INSERT_SQL, (first_envelope, last_envelope))
    ends, begins = array("q"), array("q")  # 16 bytes a pair, whatever the log's size
    text_factory = conn.text_factory
    conn.text_factory = bytes  # texts as stored: no decoding error on odd payloads, exact equality
    try:
        for end, begin in pair(conn.execute(_GROUPS_SQL, (first_envelope, last_envelope))):
            ends.append(end)
            begins.append(begin)
    finally:
        conn.text_factory = text_factory
    conn.executemany(
        "UPDATE chromium_fields SET end_envelope = ? WHERE envelope_id = ?",
        zip(ends, begins, strict=True),
    )
