"""dynamo_guards_N.html: the guards Dynamo installed for a compiled frame, one line of code each."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from tldb.module_api import DEFAULT_MODE, Module, ModuleContext, ModuleOutput


class DynamoGuards(Module):
    id = "guards"
    name = "Dynamo guards"
    subscriptions = ("outputs", "envelopes", "payloads")
    modes = frozenset({DEFAULT_MODE})
    on_demand = True  # a page is one output row

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        return ModuleOutput(files=self._pages(ctx))

    def _pages(self, ctx: ModuleContext) -> Iterator[tuple[str, str]]:
        for row in ctx.query("guards", mode=ctx.config.mode, number=None):
            yield row["path"], self._page(ctx, row["payload"])

    def _page(self, ctx: ModuleContext, payload: str) -> str:
        guards = orjson.loads(payload)  # the plan checked: a list of {code: str}
        return ctx.render("guards.html", codes=[g["code"] for g in guards])

    def file_keys(self, ctx: ModuleContext) -> Iterator[tuple[str, int]]:
        for row in ctx.query("pages", mode=ctx.config.mode):
            yield row["path"], row["number"]

    def render_file(self, ctx: ModuleContext, key: int) -> str:
        return self._page(
            ctx, next(ctx.query("guards", mode=ctx.config.mode, number=key))["payload"]
        )


MODULE = DynamoGuards()
