"""Progress bars: drawn on a terminal for long work, silent when output is piped."""

from __future__ import annotations

import io
import sys

from conftest import data_path

from tldb.progress import byte_progress, count_progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_piped(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with count_progress(10_000, "writing") as tick:
        assert tick is None
    with byte_progress(1 << 30, "loading") as update:
        assert update is None


def test_drawn_on_a_terminal(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with count_progress(5000, "writing") as tick:
        for count in range(0, 6000, 500):
            tick(count)  # past the expected count the bar stays full
    with byte_progress(64 << 20, "loading") as update:
        update(32 << 20)
        update(64 << 20)
    shown = terminal.getvalue()
    assert "writing" in shown
    assert "loading" in shown
    assert "100%" in shown


def test_small_jobs_get_no_bar(monkeypatch):
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    with count_progress(40, "writing") as tick:
        assert tick is None


def test_parallel_render_reports_every_workers_files(tmp_path):
    """With two workers, the count the progress callback hears reaches every file written."""
    from tldb import db as dbmod
    from tldb.loader import build_database
    from tldb.module_api import ReportConfig
    from tldb.registry import ModuleRegistry
    from tldb.report import render_report

    log = data_path("torch213/dynamo.log")
    database = tmp_path / "t.db"
    build_database([log], database)
    registry = ModuleRegistry.discover()
    modules = registry.for_mode("default")
    heard: list[int] = []
    out = tmp_path / "out"
    out.mkdir()
    db = dbmod.open_readonly(database)
    try:
        site, _ = render_report(
            db,
            1,
            out,
            ReportConfig(),
            registry,
            modules,
            heard.append,
            jobs=2,
            reopen=lambda: dbmod.open_readonly(database),
        )
    finally:
        db.conn.close()
    written = sum(1 for p in out.rglob("*") if p.is_file())
    assert site.files == written
    assert heard == sorted(heard)
    assert heard[-1] == written - 1  # every file but index.html, written after the modules
