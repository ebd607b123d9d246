"""The `chromium_spans` view pairs chromium begin (B) and end (E) events as documented: the
nth B with the nth E of the same name, pid, tid and args.compile_id, in log order; X events
as they are; other phases, non-object and malformed payloads ignored. Checked against an
independent pairing written here in Python, on a hand-written log with the awkward cases
(repeats, nesting, interleaved threads, unmatched begins, string and float fields)."""

from __future__ import annotations

import json
from collections import defaultdict

from conftest import LogWriter

from tldb import db as dbmod
from tldb.loader import build_database

#: (ph, name, pid, tid, ts, compile_id or None, extra fields)
EVENTS = [
    ("B", "dynamo", 1, 1, 100, "0/0", {}),
    ("B", "inductor", 1, 1, 110, "0/0", {}),
    ("B", "inductor", 1, 1, 120, "0/0", {}),  # a second begin of the same name, nested
    ("E", "inductor", 1, 1, 130, "0/0", {"args": {"compile_id": "0/0", "n": 1}}),
    ("B", "inductor", 1, 2, 125, "0/0", {}),  # another thread: its own pairs
    ("E", "inductor", 1, 1, 140, "0/0", {"args": {"compile_id": "0/0", "n": 2}}),
    ("E", "inductor", 1, 2, 145.5, "0/0", {}),
    ("X", "kernel", 1, 1, 150, None, {"dur": 7}),
    ("i", "instant", 1, 1, 151, None, {}),  # neither paired nor complete
    ("B", "dynamo", 1, 1, 160, "1/0", {}),  # other compile id: its own pairs
    ("E", "dynamo", 1, 1, 170, "0/0", {}),
    ("B", "never_ends", 1, 1, 175, None, {}),
    ("E", "dynamo", 1, 1, 190, "1/0", {"cat": "dynamo_timed"}),
    ("B", "str_pid", "p", "t", 200, None, {}),
    ("E", "str_pid", "p", "t", 205, None, {}),
]


def _log(tmp_path):
    writer = LogWriter()
    for ph, name, pid, tid, ts, compile_id, extra in EVENTS:
        event = {"name": name, "ph": ph, "pid": pid, "tid": tid, "ts": ts, **extra}
        if compile_id is not None:
            event.setdefault("args", {})["compile_id"] = compile_id
        writer.add({"chromium_event": {}}, json.dumps(event))
    writer.add({"chromium_event": {}}, "[1, 2]")  # not an object
    writer.add({"chromium_event": {}}, '{"name": "broken", "ph": "B"')  # not JSON
    return writer.write(tmp_path / "spans.log")


def _expected() -> list[tuple]:
    """(name, start, duration, begin line, end line, end args) of every span, paired here."""
    begins, ends = defaultdict(list), defaultdict(list)
    spans = []
    for index, (ph, name, pid, tid, ts, compile_id, extra) in enumerate(EVENTS):
        line = 2 * index + 1  # an envelope line, then its one payload line
        group = (name, str(pid), str(tid), compile_id or "")
        args = extra.get("args", {"compile_id": compile_id} if compile_id else None)
        if ph == "X":
            spans.append((name, ts, extra["dur"], line, line, args))
        elif ph in "BE":
            (begins if ph == "B" else ends)[group].append((ts, line, args))
    for group, starts in begins.items():
        for (ts, line, _), end in zip(starts, ends[group], strict=False):
            spans.append((group[0], ts, end[0] - ts, line, end[1], end[2]))
    return sorted(spans, key=lambda s: (s[3], s[0]))


def test_spans_pair_the_nth_begin_with_the_nth_end_of_their_group(tmp_path):
    db_path = tmp_path / "t.db"
    build_database([_log(tmp_path)], db_path)
    db = dbmod.open_readonly(db_path)
    try:
        rows = db.conn.execute(
            "SELECT name, start_us, duration_us, begin_line, end_line, end_args "
            "FROM chromium_spans ORDER BY begin_line, name"
        ).fetchall()
    finally:
        db.conn.close()
    got = [(n, s, d, b, e, json.loads(a) if a else None) for n, s, d, b, e, a in rows]
    assert got == _expected()
    assert {row[0] for row in got} >= {"dynamo", "inductor", "kernel", "str_pid"}
    assert "never_ends" not in {row[0] for row in got}
