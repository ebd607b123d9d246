"""datasette_metadata.yml describes every table, view and column of a freshly built database,
and of a combined one (`tldb combine`: a rank column in every table)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from tldb.combine import combine
from tldb.loader import build_database
from tldb.resources import metadata_file
from tldb.serve import TEMPLATE_DATABASE


@pytest.fixture(scope="module")
def metadata() -> dict:
    return yaml.safe_load(metadata_file().read_text(encoding="utf-8"))


@pytest.fixture
def built(tmp_path, log_writer) -> dict[str, Path]:
    """A database built the normal way (its shape does not depend on the log's content), and
    the combination of two of them."""
    log_writer.add({"dynamo_start": {"stack": []}, "frame_id": 0, "frame_compile_id": 0})
    log = log_writer.write(tmp_path / "tiny.log")
    for rank in (0, 1):
        build_database([log], tmp_path / f"rank_{rank}.db")
    combine([(0, tmp_path / "rank_0.db"), (1, tmp_path / "rank_1.db")], tmp_path / "ranks.db")
    return {"fresh": tmp_path / "rank_0.db", "combined": tmp_path / "ranks.db"}


@pytest.fixture
def fresh_db(built) -> sqlite3.Connection:
    conn = sqlite3.connect(built["fresh"])
    yield conn
    conn.close()


@pytest.fixture
def combined_db(built) -> sqlite3.Connection:
    conn = sqlite3.connect(built["combined"])
    yield conn
    conn.close()


def _relations(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Tables and views of tldb (not SQLite's own), with their columns."""
    names = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return {
        name: [row[1] for row in conn.execute(f"PRAGMA table_info([{name}])")] for name in names
    }


@pytest.mark.parametrize("which", ["fresh_db", "combined_db"])
def test_every_column_has_a_description(metadata, which, request):
    tables = metadata["databases"][TEMPLATE_DATABASE]["tables"]
    missing = [
        f"{name}.{column}"
        for name, columns in _relations(request.getfixturevalue(which)).items()
        for column in columns
        if not (tables.get(name, {}).get("columns", {}).get(column) or "").strip()
    ]
    assert missing == [], f"describe these in datasette_metadata.yml: {', '.join(missing)}"


def test_every_table_and_view_has_a_description(metadata, fresh_db):
    tables = metadata["databases"][TEMPLATE_DATABASE]["tables"]
    undescribed = [n for n in _relations(fresh_db) if not tables.get(n, {}).get("description")]
    assert undescribed == []


def test_nothing_described_that_does_not_exist(metadata, fresh_db, combined_db):
    """Stale entries mislead as much as missing ones: tables and columns must all exist
    (the rank columns only in combined databases)."""
    fresh, combined = _relations(fresh_db), _relations(combined_db)
    tables = metadata["databases"][TEMPLATE_DATABASE]["tables"]
    assert set(tables) == set(fresh)
    stale = [
        f"{name}.{column}"
        for name, table in tables.items()
        for column in table.get("columns", {})
        if column not in fresh[name] + combined.get(name, [])
    ]
    assert stale == []


def test_table_options_name_real_columns(metadata, fresh_db):
    """Facets, sort orders and label columns point at columns that exist."""
    relations = _relations(fresh_db)
    wrong = []
    for name, table in metadata["databases"][TEMPLATE_DATABASE]["tables"].items():
        used = list(table.get("facets", []))
        used += [table[key] for key in ("sort", "sort_desc", "label_column") if key in table]
        wrong += [f"{name}.{column}" for column in used if column not in relations[name]]
    assert wrong == []


def test_canned_queries_compile_and_declare_their_parameters(metadata, fresh_db):
    """Every canned query is valid SQL on the schema; its parameters are the declared ones."""
    for name, query in metadata["databases"][TEMPLATE_DATABASE]["queries"].items():
        params = dict.fromkeys(query.get("params", []), "")
        assert query.get("title"), name
        assert query.get("description"), name
        fresh_db.execute(query["sql"], params).fetchall()  # raises on bad SQL or a missing param
