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

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        return ModuleOutput(files=self._pages(ctx))

    def _pages(self, ctx: ModuleContext) -> Iterator[tuple[str, str]]:
        for row in ctx.query("guards", mode=ctx.config.mode):
            guards = orjson.loads(row["payload"])  # the plan checked: a list of {code: str}
            yield row["path"], ctx.render("guards.html", codes=[g["code"] for g in guards])


MODULE = DynamoGuards()
