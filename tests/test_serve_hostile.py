"""Hostile SQL sent to a real `tldb serve` on loopback: refused or stopped, the server stays up,
and the database file is byte-identical afterwards.

Each query below is sent over HTTP to the server's ad-hoc SQL endpoint; after each one a plain
query must still answer, and at the end the database's SHA-256 is the one it had before.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse

import pytest
from conftest import data_path
from live_server import serve

from tldb.report import ReportRequest, run_report

#: Time limit of the test server (ms): the recursive CTE bombs must hit it.
TIME_LIMIT_MS = 1000

#: Statements that change something: Datasette accepts only SELECT.
WRITES = [
    "delete from meta",
    "update meta set value = 'x'",
    "insert into meta values ('a', 'b')",
    "drop table meta",
    "create table t(x)",
    "create temp table t(x)",
    "attach database 'other.db' as other",
    "detach database main",
    "pragma writable_schema = 1",
    "pragma journal_mode = wal",
    "pragma user_version = 7",
    "pragma query_only = 0",
    "vacuum",
    "vacuum into 'copy.db'",
    "reindex",
    "analyze",
    "begin immediate",
    "select 1; delete from meta",
]

#: SELECTs that try to load code, leak pointers, attach through a function, or allocate or
#: loop inside one function call (where no time limit can stop them).
BOMBS = [
    "select load_extension('libm.so.6')",
    "select fts3_tokenizer('simple')",
    "select length(randomblob(1000000000))",
    "select length(zeroblob(1000000000))",
    "select length(hex(zeroblob(60000000)))",
    "select printf('%.*c', 2000000000, 'x')",
    "select format('%2000000000d', 1)",
    "select length(replace(hex(randomblob(30000000)), '0', 'abcdef'))",
    "select group_concat(hex(randomblob(1000000))) from (with recursive c(x) as "
    "(select 1 union all select x + 1 from c limit 100) select x from c)",
    "select " + "(" * 5000 + "1" + ")" * 5000,
    "select " + " + ".join(["1"] * 5000),
]

#: Queries that only the time limit stops.
SLOW = [
    "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c",
    "with recursive c(x) as (select 1 union all select x + 1 from c) "
    "select count(*) from c as a, c as b",
    "select count(*) from envelopes a, envelopes b, envelopes c, envelopes d",
]


#: The database's hash when the report was written, before any server opened it.
ORIGINAL: dict = {}


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "out"
    run_report(ReportRequest(source=data_path("torch213/dynamo.log"), out_dir=out))
    ORIGINAL[out] = _sha256(out / "trace.db")
    return out


@pytest.fixture(scope="module")
def server(report):
    with serve(str(report), "--setting", "sql_time_limit_ms", str(TIME_LIMIT_MS)) as served:
        yield served


def _sql(server, sql: str):
    status, body, _ = server.get("/trace.json?sql=" + urllib.parse.quote(sql))
    return status, body


def _still_up(server) -> None:
    status, body = _sql(server, "select count(*) from meta")
    assert status == 200, body[:300]
    assert json.loads(body)["rows"][0][0] > 0
    assert server.process.poll() is None


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused(server, report, sql):
    status, body = _sql(server, sql)
    assert status == 400
    refusals = (b"Statement must be a SELECT", b"one statement at a time")
    assert any(reason in body for reason in refusals), body[:300]
    _still_up(server)


@pytest.mark.parametrize("sql", BOMBS, ids=lambda s: s[:40])
def test_bombs_are_refused(server, sql):
    status, body = _sql(server, sql)
    assert status == 400, body[:300]
    assert json.loads(body)["ok"] is False
    _still_up(server)


@pytest.mark.parametrize("sql", SLOW, ids=lambda s: s[:40])
def test_slow_queries_are_stopped_by_the_time_limit(server, sql):
    status, body = _sql(server, sql)
    assert status == 400
    assert b"SQL query took too long" in body
    _still_up(server)


def test_very_long_sql_is_refused_and_the_server_stays_up(server):
    """A megabyte of SQL in the URL: the HTTP layer refuses it (status 0: the connection is
    closed, or an error status); a long SQL text under that limit but over tldb's is refused
    by SQLite."""
    status, _ = _sql(server, "select '" + "x" * 1_000_000 + "'")
    assert status in (0, 400, 413, 414)
    _still_up(server)
    status, body = _sql(server, "select 1 /*" + "x" * 12000 + "*/")
    assert status == 200, body[:300]


def test_database_is_unchanged_after_all_of_it(report, server):
    """Runs last in this module: every query above has been sent to the same server."""
    before = ORIGINAL[report]
    for sql in WRITES + BOMBS[:4] + SLOW[:1]:
        _sql(server, sql)
    _still_up(server)
    assert _sha256(report / "trace.db") == before
    assert sorted(p.name for p in report.iterdir() if p.suffix == ".db") == ["trace.db"]
    assert not (report / "copy.db").exists() and not (report.parent / "other.db").exists()
