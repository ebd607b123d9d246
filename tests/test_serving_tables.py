"""Tables for serving: the slow analysis views held as tables, where a database is meant for a
server (`tldb serve LOG`, `--serving-tables`), and only there (a plain report does not pay)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

from conftest import data_path, run_tldb

from tldb.combine import MATERIALIZED_VIEWS

LOG = "torch213/dynamo.log"


def _kinds(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        marks = ",".join("?" * len(MATERIALIZED_VIEWS))
        sql = f"SELECT name, type FROM sqlite_master WHERE name IN ({marks})"
        return dict(conn.execute(sql, MATERIALIZED_VIEWS))


def _rows(db: Path, name: str) -> Counter:
    with sqlite3.connect(db) as conn:
        return Counter(conn.execute(f'SELECT * FROM "{name}"'))


def test_load_holds_the_views_as_tables_only_when_asked(tmp_path):
    plain, serving = tmp_path / "plain.db", tmp_path / "serving.db"
    log = str(data_path(LOG))
    for db, flags in ((plain, ()), (serving, ("--serving-tables",))):
        result = run_tldb("load", log, "--db", str(db), *flags)
        assert result.returncode == 0, result.stderr
    assert _kinds(plain) == dict.fromkeys(MATERIALIZED_VIEWS, "view")
    assert _kinds(serving) == dict.fromkeys(MATERIALIZED_VIEWS, "table")
    for name in MATERIALIZED_VIEWS:  # the same rows, computed once
        assert _rows(serving, name) == _rows(plain, name), name
    assert sum(len(_rows(serving, name)) for name in MATERIALIZED_VIEWS) > 0


def test_report_with_serving_tables_writes_the_same_report(tmp_path):
    log = str(data_path(LOG))
    outs = {}
    for label, flags in (("plain", ()), ("serving", ("--serving-tables",))):
        outs[label] = tmp_path / label
        result = run_tldb("report", log, "-o", str(outs[label]), "--no-browser", *flags)
        assert result.returncode == 0, result.stderr
    files = {
        label: {
            str(p.relative_to(out)): p.read_bytes()
            for p in out.rglob("*")
            if p.is_file() and p.name != "trace.db"
        }
        for label, out in outs.items()
    }
    assert files["plain"] == files["serving"] and len(files["plain"]) > 10
    assert set(_kinds(outs["serving"] / "trace.db").values()) == {"table"}
    assert set(_kinds(outs["plain"] / "trace.db").values()) == {"view"}


def test_serve_log_builds_serving_tables_after_its_load(tmp_path):
    """`tldb serve LOG` loads as `tldb load` does; the tables come afterwards, in the
    background while it serves (tests/test_serve_tables.py), to the same rows."""
    from tldb.module_api import ReportConfig
    from tldb.serve import plan_serve
    from tldb.serve_logs import load_logs

    log = tmp_path / "run.log"
    log.write_bytes(data_path(LOG).read_bytes())
    databases = load_logs([log], tmp_path / "served.db", False)
    assert set(_kinds(databases[log]).values()) == {"view"}
    plan = plan_serve([log], databases, ReportConfig())
    try:
        (build,) = plan.builds
        build.start()
        build.join()
    finally:
        plan.close()
    assert set(_kinds(databases[log]).values()) == {"table"}
