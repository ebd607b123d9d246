"""The typed fields of chromium_event payloads, read once at load time (table chromium_fields).

WHY: the chromium_spans view used to find each event's name, ph, ts... with json_extract over
every chromium_event payload, a few of them 74 KB, each time it was read: ~20 ms a rank, a third
of a many-rank combine. The loader holds each payload as a Python string anyway, so it reads
them here once (orjson checks the text is JSON) and stores the values json_extract would give,
with each begin (B) already paired with its end (E), leaving the view a join and a sort.

Exactness comes first: a value is taken from Python only where it provably equals SQLite's.
Each needed key's raw token is located in the text (the key must occur exactly once, so
duplicate keys, where SQLite takes the first and orjson the last, never reach Python), strings
with escapes, numbers outside int64, nested values and floats in grouping fields go to SQLite
itself (`fallback`), and float tokens are converted by SQLite (json_extract of the token alone,
the same routine as over the whole payload: Python's float() rounds some long decimals
differently from SQLite 3.40). Known gap: a top-level key spelled with \\u escapes beside a
nested key of the same name spelled plainly (never written by torch).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import orjson

#: Top-level keys the view reads (the columns of chromium_fields, in order), then args.compile_id.
KEYS = ("name", "ph", "cat", "ts", "dur", "pid", "tid")
#: Fields that decide which begin pairs with which end: Python compares them, so they must be
#: Python values equal to SQLite's (no floats taken from Python's own parsing).
_GROUPING = ("name", "pid", "tid", "compile_id")
PHASES = ("B", "E", "X")

#: A key the view reads, its colon and the first character(s) of its value. In valid JSON, a
#: quoted name followed by a colon is a key, or the end of a longer key (`"a\"ph": 1`): such a
#: match is one too many, and the payload goes to SQLite. (No look-behind for the backslash:
#: it costs the regex its fast search for the quote, 10x slower.)
_KEY = re.compile(
    r'"(name|ph|cat|ts|dur|pid|tid|args|compile_id)"[ \t\n\r]*:[ \t\n\r]*'
    r'("[^"\\]*"|-?[0-9][0-9.eE+-]*|true|false|null|"|[{\[])'
)
_INT64 = (-(1 << 63), 1 << 63)
_PHASE_TOKENS = frozenset(f'"{phase}"' for phase in PHASES)
_TOP = frozenset((*KEYS, "args"))
_ABSENT = (None, None)

#: SQLite's own reading of one payload, for the texts Python does not settle.
_FALLBACK_SQL = (
    "SELECT "
    + ", ".join(f"json_extract(?1, '$.{key}')" for key in KEYS)
    + ", json_extract(?1, '$.args.compile_id') WHERE json_valid(?1) AND json_type(?1) = 'object'"
)
#: Insert of one row: (envelope, name, ph, cat value, cat token, ts value, ts token, dur value,
#: dur token, pid, tid, compile id, end envelope); a float arrives as its token, read by SQLite.
INSERT_SQL = (
    "INSERT INTO chromium_fields VALUES (?, ?, ?, coalesce(?, json_extract(?, '$')), "
    "coalesce(?, json_extract(?, '$')), coalesce(?, json_extract(?, '$')), ?, ?, ?, ?)"
)


class _Unsure(Exception):
    """Python cannot be sure to match SQLite on this payload: ask SQLite."""


def _decode(token: str, key: str, expected: Any) -> tuple[Any, str | None]:
    """(value, float token) of a raw JSON value token, as json_extract returns it, given
    orjson's value for the key: the token must be exactly what that value looks like without
    escapes (else the raw key found is not the one orjson read, or SQLite must decode it)."""
    kind = type(expected)
    if kind is str:
        if token == f'"{expected}"':
            return expected, None
    elif kind is int:
        if token == str(expected) and _INT64[0] <= expected < _INT64[1]:
            return expected, None  # (larger ones SQLite turns into reals)
    elif kind is float:
        if key not in _GROUPING and ("." in token or "e" in token or "E" in token):
            try:
                if float(token) == expected:
                    return None, token  # converted by SQLite, whose rounding differs
            except ValueError:
                pass
    elif kind is bool:
        if token == ("true" if expected else "false"):
            return int(expected), None
    elif expected is None and token == "null":
        return None, None
    raise _Unsure  # nested values (SQLite gives its own JSON text), escapes, mismatches


def _python(text: str) -> tuple | None:
    """(name, ph, cat, ts, dur, pid, tid, compile_id) as (value, float token) pairs, None when
    SQLite would not find a JSON object of phase B, E or X; raises _Unsure.

    Every key the view reads is located in the text (one regex pass): it must occur exactly
    once as a key anywhere if orjson saw it where json_extract looks, and not at all otherwise,
    so duplicates (SQLite reads the first, orjson the last) and nested keys of the same name go
    to SQLite. An event whose only `ph` key is not B, E or X is dropped before parsing: half of
    the payload bytes are instant events (fx_graph_cache_miss) the view never reads."""
    found = _KEY.findall(text)
    tokens = dict(found)
    if len(tokens) != len(found):
        raise _Unsure
    ph = tokens.get("ph")
    if ph not in _PHASE_TOKENS:
        if ph == '"':
            raise _Unsure  # a string with escapes: "\u0042" is B
        return None  # no ph key, or one that is not B, E or X: not a span, or not JSON at all
    try:
        event = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _Unsure from None  # SQLite may still accept it (e.g. lone surrogate escapes)
    if type(event) is not dict:
        return None
    args = event.get("args")
    inner = args if type(args) is dict else {}
    expected = event.keys() & _TOP
    if "compile_id" in inner:
        expected.add("compile_id")
    if tokens.keys() != expected:
        raise _Unsure  # a key found nested, or spelled with escapes where SQLite looks
    fields = [
        _ABSENT if key not in event else _decode(tokens[key], key, event[key]) for key in KEYS
    ]
    token = tokens.get("compile_id")
    fields.append(_ABSENT if token is None else _decode(token, "compile_id", inner["compile_id"]))
    return tuple(fields)


def read(conn: sqlite3.Connection, text: str) -> tuple | None:
    """The fields of a chromium_event payload as (value, float token) pairs, in KEYS order then
    args.compile_id; None when SQLite's json_valid/json_type would not take it as an object."""
    try:
        return _python(text)
    except _Unsure:
        row = conn.execute(_FALLBACK_SQL, [text]).fetchone()
        return None if row is None else tuple((value, None) for value in row)


class Pairing:
    """Collects one log's B/E/X events in log order and pairs the nth begin with the nth end of
    the same name, pid, tid and args.compile_id (NULL and '' alike), as chromium_spans shows."""

    def __init__(self) -> None:
        self.rows: list[list] = []
        self.begins: dict[tuple, list[list]] = {}
        self.ends: dict[tuple, list[int]] = {}

    def add(self, envelope_id: int, fields: tuple) -> None:
        (name, _), (ph, _), cat, ts, dur, (pid, _), (tid, _), (compile_id, _) = fields
        if not isinstance(ph, str) or ph not in PHASES:
            return
        row = [envelope_id, name, ph, *cat, *ts, *dur, pid, tid, compile_id, None]
        self.rows.append(row)
        if ph != "X":
            group = (name, pid, tid, "" if compile_id is None else compile_id)
            if ph == "B":
                self.begins.setdefault(group, []).append(row)
            else:
                self.ends.setdefault(group, []).append(envelope_id)

    def finished(self) -> list[list]:
        """The rows, each begin with its end's envelope id (last column) when it has one."""
        for group, begins in self.begins.items():
            for row, end in zip(begins, self.ends.get(group, ()), strict=False):
                row[-1] = end
        return self.rows
