"""chromium_events.json: every compile-time trace event of the log, loadable in Perfetto."""

from __future__ import annotations

from collections.abc import Iterator

from tldb import chromium_events, jsonfmt
from tldb.module_api import DEFAULT_MODE, IndexContribution, Module, ModuleContext, ModuleOutput


class ChromiumTrace(Module):
    id = "chromium_trace"
    name = "Chromium trace events"
    subscriptions = ("envelopes", "payloads")
    modes = frozenset({DEFAULT_MODE})
    cost = 4
    on_demand = True  # its files are made lazily, streamed when asked for
    long_files = frozenset({"chromium_events.json"})

    def _events(self, ctx: ModuleContext) -> Iterator[object]:
        """Parsed when the file is written (shared with triage: tldb/chromium_events.py)."""
        yield from chromium_events.accepted(ctx)

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        has_events = chromium_events.has_accepted(ctx)
        index = [IndexContribution("chromium", ctx.render("section.html"))] if has_events else []
        return ModuleOutput(
            files=[("chromium_events.json", jsonfmt.pretty_array(self._events(ctx)))],
            index_html=index,
        )


MODULE = ChromiumTrace()
