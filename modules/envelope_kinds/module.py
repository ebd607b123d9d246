"""Envelope kinds: what the log holds, kind by kind, and what tldb did not recognise.

The index section lists every envelope kind with its count and the typed view that holds its
fields (the recognised kinds are the rows of the `envelope_catalogue` view of sql/kinds.sql,
the one list of them). Kinds that no row recognises are listed with their counts, so nothing
a newer PyTorch writes goes unnoticed. Kinds that tlparse 0.4.3 leaves out of its report
(create_symbol, runtime metrics, export-only envelopes outside --export...) and envelopes of
regional-Inductor subgraphs get a page, envelope_kinds.html, with their fields.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tldb.module_api import DEFAULT_MODE, IndexContribution, Module, ModuleContext, ModuleOutput
from tldb.stacks import load_strings, simplify_filename

PAGE = "envelope_kinds.html"
#: Columns every typed view starts with; the page shows the others.
COMMON = ("envelope_id", "log_id", "line", "status", "kind", "compile_id", "rank", "subgraph_name")
#: Catalogue values of `tlparse` whose kinds tlparse's default report does not show.
NOT_IN_TLPARSE_REPORT = ("ignored", "export mode")
#: Largest number of rows shown per kind on the page (the database has them all).
ROWS_PER_KIND = 200
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def stack_text(value: str, strings: dict[int, str]) -> str:
    """A JSON stack as `file:line in name` lines, innermost last."""
    try:
        frames = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if not isinstance(frames, list):
        return value
    lines = []
    for frame in frames:
        if not isinstance(frame, dict):
            continue
        index = frame.get("filename")
        name = frame.get("uninterned_filename") or strings.get(index, f"<str {index}>")
        lines.append(f"{simplify_filename(str(name))}:{frame.get('line')} in {frame.get('name')}")
    return "\n".join(lines)


def unrecognised_kinds(kinds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kinds no catalogue row recognises, most frequent first (then by name: SQLite's
    binary order of UTF-8 text is the code point order Python sorts by), as the
    unrecognised_kinds view lists them."""
    found = [k for k in kinds if not k["recognised"]]
    return sorted(found, key=lambda k: (-k["envelopes"], k["kind"]))


class EnvelopeKinds(Module):
    id = "envelope_kinds"
    name = "Envelope kinds"
    subscriptions = ("envelopes", "envelope_catalogue", "unrecognised_kinds", "subgraphs")
    modes = frozenset({DEFAULT_MODE})

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        kinds = list(ctx.query("kinds"))
        unrecognised = unrecognised_kinds(kinds)
        shown = [k for k in kinds if k["tlparse"] in NOT_IN_TLPARSE_REPORT]
        subgraphs = list(ctx.query("subgraphs"))
        files = []
        if shown or subgraphs:
            strings = load_strings(ctx.db, ctx.log_id)
            sections = [self._rows(ctx, k, strings) for k in shown]
            files.append((PAGE, ctx.render("page.html", sections=sections, subgraphs=subgraphs)))
        section = ctx.render(
            "section.html",
            kinds=kinds,
            unrecognised=unrecognised,
            page=PAGE if files else None,
            shown={k["kind"] for k in shown},
        )
        return ModuleOutput(files=files, index_html=[IndexContribution("envelope_kinds", section)])

    def _rows(self, ctx: ModuleContext, kind: dict[str, Any], strings) -> dict[str, Any]:
        view = kind["typed_view"]
        if not view or not _IDENT.match(view):
            return {"kind": kind, "rows": []}
        rows = []
        for row in ctx.db.query(
            f"SELECT * FROM [{view}] WHERE log_id = ? AND kind = ? ORDER BY envelope_id LIMIT ?",
            [ctx.log_id, kind["kind"], ROWS_PER_KIND],
        ):
            fields = [
                (name, stack_text(value, strings) if name in ("stack", "user_stack") else value)
                for name, value in row.items()
                if name not in COMMON and name != "fields" and value is not None
            ]
            rows.append({"compile_id": row["compile_id"], "line": row["line"], "fields": fields})
        return {"kind": kind, "rows": rows}


MODULE = EnvelopeKinds()
