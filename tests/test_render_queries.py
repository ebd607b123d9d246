"""Module queries rewritten for speed still count what the log holds: the envelope kinds page's
subgraph table (regional Inductor `subgraph_name`), counted here from the log with plain json."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from conftest import data_path
from torch213_log import envelopes, label

from tldb import db as dbmod
from tldb.loader import build_database
from tldb.module_api import ModuleContext, ReportConfig
from tldb.registry import ModuleRegistry


def subgraph_rows(log: str, folder: Path) -> list[dict]:
    """Rows of envelope_kinds' subgraphs.sql on a freshly loaded torch 2.13 trace."""
    target = folder / "trace.db"
    build_database([data_path(f"torch213/{log}.log")], target)
    module = ModuleRegistry.discover().modules["envelope_kinds"]
    db = dbmod.open_readonly(target)
    try:
        ctx = ModuleContext(db, folder, ReportConfig(), None, 1, module.folder)  # type: ignore[arg-type]
        return list(ctx.query("subgraphs"))
    finally:
        db.conn.close()


def test_subgraph_counts_match_the_log(tmp_path):
    expected = Counter(
        (meta["subgraph_name"], label(meta), kind)
        for kind, meta, _ in envelopes("regional")
        if "subgraph_name" in meta
    )
    assert expected and any(kind == "chromium_event" for _, _, kind in expected)
    rows = subgraph_rows("regional", tmp_path)
    got = Counter({(r["subgraph_name"], r["compile_id"], r["kind"]): r["envelopes"] for r in rows})
    assert got == expected
    assert [r["first_line"] for r in rows] == sorted(r["first_line"] for r in rows)


def test_logs_without_subgraphs_have_none(tmp_path):
    assert not any("subgraph_name" in meta for _, meta, _ in envelopes("dynamo"))
    assert subgraph_rows("dynamo", tmp_path) == []
