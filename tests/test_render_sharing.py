"""A render parses the chromium events once for chromium_trace and triage (ModuleContext.shared),
and writes the same pages as when each module streams its own parse (a log past the budget)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import data_path

from tldb import chromium_events
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


def render(database: Path, out: Path) -> list[str]:
    """Render the two modules into out; return the SQL statements the render ran."""
    registry = ModuleRegistry.discover()
    modules = registry.for_mode("default", MODULES)
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

    monkeypatch.setattr(chromium_events, "BUDGET", 0)  # as on a log with too many events
    streamed = render(database, tmp_path / "streamed")
    assert parses_of_every_event(streamed) == 2  # one stream per module
    for name in ("chromium_events.json", "triage.html", "index.html"):
        assert (tmp_path / "shared" / name).read_bytes() == (
            tmp_path / "streamed" / name
        ).read_bytes(), name


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
