"""The `metrics` view holds, for every compilation_metrics, bwd_compilation_metrics and
compilation_metrics_runtime envelope, each named field of the envelope's metrics object as a
column of the same name, `duration_s` as documented, `restart_reasons` only when it is an
array, and the whole object in `fields`. Checked against the metadata read here with Python's
json module, on real torch 2.13 logs of the repository and a hand-written log with the three
kinds, absent and null fields, nested values and floats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import LogWriter

from tldb import db as dbmod
from tldb.loader import build_database

DATA = Path(__file__).parent / "data"
KINDS = ("compilation_metrics", "bwd_compilation_metrics", "compilation_metrics_runtime")
#: Columns that are not a field of the same name.
DERIVED = {"envelope_id", "log_id", "rank", "line", "kind", "compile_id", "frame_id",
           "frame_compile_id", "attempt", "duration_s", "restart_reasons", "fields"}  # fmt: skip


def _sql_value(value):
    """What SQLite's json_extract gives for a JSON value: booleans as 0/1 (containers come as
    JSON text, compared parsed: SQLite keeps the log's own escapes)."""
    return int(value) if isinstance(value, bool) else value


def _expected(fields: dict, column: str):
    if column == "duration_s":
        for name, scale in (
            ("duration_us", 1e6),
            ("entire_frame_compile_time_s", 1),
            ("dynamo_cumulative_compile_time_us", 1e6),
            ("backward_cumulative_compile_time_us", 1e6),
            ("inductor_cumulative_compile_time_us", 1e6),
        ):
            if fields.get(name) is not None:
                return fields[name] / scale if scale != 1 else fields[name]
        return None
    if column == "restart_reasons":
        value = fields.get("restart_reasons")
        return _sql_value(value) if isinstance(value, list) else None
    return _sql_value(fields.get(column))


def _check(db_path: Path) -> int:
    db = dbmod.open_readonly(db_path)
    try:
        cursor = db.conn.execute("SELECT * FROM metrics ORDER BY envelope_id")
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor]
        envelopes = db.conn.execute(
            "SELECT id, kind, metadata FROM envelopes WHERE status = 'ok' AND kind IN (?, ?, ?) "
            "ORDER BY id",
            KINDS,
        ).fetchall()
    finally:
        db.conn.close()
    assert [r["envelope_id"] for r in rows] == [e[0] for e in envelopes]
    named = [c for c in columns if c not in DERIVED]
    assert len(named) > 30  # the view's columns are what this test checks
    for row, (_, kind, metadata) in zip(rows, envelopes, strict=True):
        fields = json.loads(metadata)[kind]
        assert row["kind"] == kind
        assert json.loads(row["fields"]) == fields
        for column in [*named, "duration_s", "restart_reasons"]:
            expected = _expected(fields, column)
            if isinstance(expected, (dict, list)):
                assert json.loads(row[column]) == expected, column
            elif isinstance(expected, float):
                assert row[column] == pytest.approx(expected, rel=1e-12), column
            else:
                assert row[column] == expected, (column, row["envelope_id"])
    return len(rows)


@pytest.mark.parametrize("log", ["dynamo.log", "cache_1.log", "regional.log"])
def test_metrics_columns_are_the_fields_of_real_logs(tmp_path, log):
    db_path = tmp_path / "trace.db"
    build_database([DATA / "torch213" / log], db_path)
    assert _check(db_path) > 0


def test_metrics_columns_over_the_three_kinds_and_awkward_values(tmp_path):
    writer = LogWriter()
    cid = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
    writer.add({"compilation_metrics": {"co_name": "f", "duration_us": 2500000,
                "guard_count": 3, "restart_reasons": ["a \"quoted\" reason", "é"],
                "is_forward": True, "fail_type": None, "graph_op_count": 0}, **cid})  # fmt: skip
    writer.add({"compilation_metrics": {"co_name": "g", "entire_frame_compile_time_s": 1.25,
                "restart_reasons": None, "inductor_config": {"a": [1, 2.5]}}, **cid})  # fmt: skip
    writer.add({"bwd_compilation_metrics": {"inductor_cumulative_compile_time_us": 7,
                "is_forward": False, "cache_size": 1e300}, **cid})  # fmt: skip
    writer.add({"compilation_metrics_runtime": {"gc_time_us": 12, "pytorch_version": "2.13"}})
    writer.add({"compilation_metrics": {}, **cid})
    db_path = tmp_path / "trace.db"
    build_database([writer.write(tmp_path / "m.log")], db_path)
    assert _check(db_path) == 5
