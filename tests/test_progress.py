"""Progress bars: drawn on a terminal for long work, silent when output is piped."""

from __future__ import annotations

import io
import sys

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
