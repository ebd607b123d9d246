"""A render parses the chromium events once for chromium_trace and triage, and reads the stack
records once for stack_trie and compilation_metrics (ModuleContext.shared), and writes the same
pages as when each module makes its own (a log past the budget, or no sharing at all)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import data_path
from torch213_log import envelopes

from tldb import chromium_events, stack_records
from tldb import db as dbmod
from tldb.loader import build_database
from tldb.module_api import ModuleContext, ReportConfig
from tldb.registry import ModuleRegistry
from tldb.report import render_report

MODULES = ["chromium_trace", "triage"]


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("sharing") / "trace.db"
    build_database([data_path("torch213/dynamo.log")], target)
    return target


def render(database: Path, out: Path, chosen: list[str] = MODULES) -> list[str]:
    """Render the modules into out; return the SQL statements the render ran."""
    registry = ModuleRegistry.discover()
    modules = registry.for_mode("default", chosen)
    db = dbmod.open_readonly(database)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    out.mkdir()
    try:
        render_report(db, 1, out, ReportConfig(), registry, modules)
    finally:
        db.conn.close()
    return statements


def parses_of_every_event(statements: list[str]) -> int:
    return sum("CAST(p.text AS BLOB)" in s and "<> 'bad_json'" in s for s in statements)


def test_events_are_read_once_per_render_and_pages_match_streaming(database, tmp_path, monkeypatch):
    shared = render(database, tmp_path / "shared")
    assert parses_of_every_event(shared) == 1
    events = orjson.loads((tmp_path / "shared" / "chromium_events.json").read_bytes())
    assert any(e["ph"] == "B" for e in events)
    assert "entire_frame_compile" in (tmp_path / "shared" / "triage.html").read_text()

    monkeypatch.setattr(chromium_events, "BUDGET", 0)  # as on a log with too much event JSON
    streamed = render(database, tmp_path / "streamed")
    # The shared fetch gives up at the first payload past the budget; each module then streams.
    assert parses_of_every_event(streamed) == 3
    for name in ("chromium_events.json", "triage.html", "index.html"):
        assert (tmp_path / "shared" / name).read_bytes() == (
            tmp_path / "streamed" / name
        ).read_bytes(), name


def test_events_are_shared_up_to_the_budget_in_bytes(database, tmp_path, monkeypatch):
    size = sum(len(p.encode()) for kind, _, p in envelopes("dynamo") if kind == "chromium_event")
    monkeypatch.setattr(chromium_events, "BUDGET", size)
    assert parses_of_every_event(render(database, tmp_path / "within")) == 1
    monkeypatch.setattr(chromium_events, "BUDGET", size - 1)
    assert parses_of_every_event(render(database, tmp_path / "past")) == 3  # given up, 2 streams


def test_shared_value_is_made_once_with_a_memo_and_each_time_without(database):
    db = dbmod.open_readonly(database)
    try:
        made: list[int] = []

        def make() -> list[int]:
            made.append(1)
            return made

        base = ModuleContext(db, Path(), ReportConfig(), None, 1, Path())  # type: ignore[arg-type]
        assert base.shared("test.key", make) is base.shared("test.key", make)
        assert len(made) == 2  # no memo (`tldb serve`'s contexts): nothing kept
        made.clear()
        ctx = ModuleContext(db, Path(), ReportConfig(), None, 1, Path(), memo={})  # type: ignore[arg-type]
        first = list(chromium_events.accepted(ctx))
        assert first == list(chromium_events.accepted(ctx))
        assert ctx.memo is not None and list(ctx.memo) == [chromium_events._KEY]
        assert ctx.shared("test.key", make) is ctx.shared("test.key", make)
        assert len(made) == 1
    finally:
        db.conn.close()


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_stack_records_are_read_once_per_render_and_pages_match_unshared(
    database, tmp_path, monkeypatch
):
    chosen = ["stack_trie", "compilation_metrics"]
    # The statements come with their parameters filled in: find the pass by its last line.
    passes = stack_records._SQL.strip().splitlines()[-3:]
    shared = render(database, tmp_path / "shared", chosen)
    assert sum(s.strip().splitlines()[-3:] == passes for s in shared) == 1
    pages = files_of(tmp_path / "shared")
    assert any(name.endswith(".html") and "compilation_metrics" in name for name in pages)
    assert b"Stack" in pages["index.html"]

    monkeypatch.setattr(ModuleContext, "shared", lambda self, key, make: make())
    unshared = render(database, tmp_path / "unshared", chosen)
    assert sum(s.strip().splitlines()[-3:] == passes for s in unshared) == 2  # one pass per module
    assert files_of(tmp_path / "unshared") == pages
