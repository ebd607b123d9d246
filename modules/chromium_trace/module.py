"""chromium_events.json: every compile-time trace event of the log, loadable in Perfetto."""

from __future__ import annotations

from collections.abc import Iterator

from tldb import jsonfmt
from tldb.module_api import DEFAULT_MODE, IndexContribution, Module, ModuleContext, ModuleOutput

#: Events formatted per orjson call: fewer calls, and a batch is still small in memory.
BATCH = 512


def pretty_array(items: Iterator[object]) -> Iterator[bytes]:
    """A pretty JSON array (serde_json's layout), written a batch of elements at a time.

    orjson indents a list's elements exactly as they sit in the whole array, so each batch is
    dumped as a list and its brackets are cut; the whole list is never in memory.
    """
    batch: list[object] = []
    started = False
    for item in items:
        batch.append(item)
        if len(batch) >= BATCH:
            yield (b",\n" if started else b"[\n") + jsonfmt.dumps_pretty_bytes(batch)[2:-2]
            started, batch = True, []
    if batch:
        yield (b",\n" if started else b"[\n") + jsonfmt.dumps_pretty_bytes(batch)[2:-2]
        started = True
    yield b"\n]" if started else b"[]"


class ChromiumTrace(Module):
    id = "chromium_trace"
    name = "Chromium trace events"
    subscriptions = ("envelopes", "payloads")
    modes = frozenset({DEFAULT_MODE})
    cost = 4

    def _events(self, ctx: ModuleContext) -> Iterator[object]:
        for row in ctx.query("events"):
            try:
                yield jsonfmt.loads_like_serde(row["payload"])
            except ValueError:
                continue  # a cut payload: tlparse skips it too (its md5 failure is counted)

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        has_events = any(True for _ in ctx.query("events"))
        index = [IndexContribution("chromium", ctx.render("section.html"))] if has_events else []
        return ModuleOutput(
            files=[("chromium_events.json", pretty_array(self._events(ctx)))], index_html=index
        )


MODULE = ChromiumTrace()
