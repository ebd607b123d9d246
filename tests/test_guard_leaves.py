"""guard_leaves (split by the loader in Python) gives the `guards` view exactly the rows, in the
same order, that splitting the payloads with SQLite's JSON and string functions gives: on real
torch 2.13 logs and on hand-written trees with the cases where Python's string rules and
SQLite's differ (Unicode upper-casing, trim of spaces only, NUL and \\x01 characters)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import LogWriter

from tldb.loader import build_database

DATA = Path(__file__).parent / "data" / "torch213"
REAL_LOGS = ["cache_1.log", "dynamo.log", "aoti.log.gz", "shapes.log.gz"]

#: The leaves as documented, split from the payloads by SQLite alone.
REFERENCE = r"""
WITH g AS MATERIALIZED (
    SELECT t.id AS envelope_id, t.log_id, coalesce(l.file_rank, t.rank, l.detected_rank) AS rank,
           t.line, t.compile_id, substr(ltrim(replace(j.value, char(1), '\'), '| '), 4) AS node,
           (length(j.value) - length(ltrim(j.value, '| '))) / 2 AS depth
    FROM (SELECT e.*, p.text FROM envelopes e JOIN payloads p ON p.id = e.payload_id
          WHERE e.status = 'ok' AND e.kind = 'dynamo_cpp_guards_str') t
    JOIN logs l ON l.id = t.log_id,
         json_each('[' || replace(json_quote(replace(t.text, '\', char(1))), '\n', '","')
                   || ']') j
    WHERE ltrim(j.value, '| ') LIKE '+- %'
)
SELECT envelope_id, log_id, rank, line, compile_id, 'dynamo_cpp_guards_str',
       substr(node, 1, instr(node, ':') - 1), trim(substr(node, instr(node, ':') + 1)), depth
FROM g
WHERE instr(node, ':') > 1
  AND substr(node, 1, instr(node, ':') - 1) = upper(substr(node, 1, instr(node, ':') - 1))
  AND substr(node, 1, 1) GLOB '[A-Z]'
"""

TREES = [
    "TREE_GUARD_MANAGER:\n+- RootGuardManager\n| +- DEFAULT_DEVICE: utils_device.CURRENT_DEVICE == None"
    "\n| +- GLOBAL_STATE: ___check_global_state()\n| | +- TYPE_MATCH: ___check_type_id(L['x'], 9)",
    "+- TYPEé: unicode after ASCII capitals\n+- ÉTAT: starts with a non-ASCII capital\n"
    "+- Type_Lower: mixed case\n+- : empty type\n+- NO_COLON here\n+-NOSPACE: x\n"
    '|  +- ODD_DEPTH:  \t code with a tab  \n +- CR: carriage\r\n+- QUOTE: "a\\\\b" \\n',
    "+- NUL: a\x00b\n+- AFTER: nul",
    "+- ONE: \x01 char\n| +- TWO: x",
    "",
    "+- SAME: repeated payload",
    "+- SAME: repeated payload",
]


@pytest.fixture(scope="module")
def conns(tmp_path_factory) -> list[sqlite3.Connection]:
    folder = tmp_path_factory.mktemp("guards")
    writer = LogWriter()
    for tree in TREES:
        writer.add({"dynamo_cpp_guards_str": {}, "frame_id": 0, "frame_compile_id": 0}, tree)
    paths = {"real": [DATA / name for name in REAL_LOGS], "trees": [writer.write(folder / "t.log")]}
    result = []
    for name, logs in paths.items():
        build_database(logs, folder / f"{name}.db", pipelined=False)
        conn = sqlite3.connect(f"file:{folder / name}.db?mode=ro", uri=True)
        conn.text_factory = bytes  # exact texts (a NUL inside a text included)
        result.append(conn)
    yield result
    for conn in result:
        conn.close()


@pytest.mark.parametrize("which", [0, 1], ids=["real_logs", "trees"])
def test_guards_equal_the_split_done_by_sqlite(conns, which):
    expected = conns[which].execute(REFERENCE).fetchall()
    got = (
        conns[which]
        .execute("SELECT * FROM guards WHERE source = 'dynamo_cpp_guards_str'")
        .fetchall()
    )
    assert len(expected) >= 8
    assert [tuple((type(v), v) for v in r) for r in got] == [
        tuple((type(v), v) for v in r) for r in expected
    ]


def test_the_awkward_leaves_are_kept_or_dropped_as_sqlite_does(conns):
    types = [row[0] for row in conns[1].execute("SELECT guard_type FROM guards")]
    assert "TYPEé".encode() in types and b"ODD_DEPTH" in types and b"CR" in types
    assert not {b"\xc3\x89TAT", b"Type_Lower", b"", b"NOSPACE"} & set(types)
    assert b"NUL" in types and b"ONE" in types and types.count(b"SAME") == 2


def test_repeated_trees_past_the_kept_ones_are_split_again_the_same(tmp_path, monkeypatch):
    """The load keeps the leaves of at most GUARD_TREES_KEPT distinct trees for repeats (not
    every tree of a long log); a tree repeated after the kept ones were let go is split again,
    with the same rows."""
    from tldb import loader

    monkeypatch.setattr(loader, "GUARD_TREES_KEPT", 2)
    trees = [f"+- TREE_{n}: x == {n}\n| +- LEAF_{n}: y > {n}" for n in range(4)]
    writer = LogWriter()
    for tree in trees + trees[::-1] + trees:  # every tree comes back after others
        writer.add({"dynamo_cpp_guards_str": {}, "frame_id": 0, "frame_compile_id": 0}, tree)
    build_database([writer.write(tmp_path / "t.log")], tmp_path / "t.db", pipelined=False)
    conn = sqlite3.connect(f"file:{tmp_path / 't.db'}?mode=ro", uri=True)
    try:
        got = conn.execute("SELECT * FROM guards WHERE source = 'dynamo_cpp_guards_str'")
        expected = conn.execute(REFERENCE).fetchall()
        assert got.fetchall() == expected
        assert len(expected) == 2 * 12
    finally:
        conn.close()
