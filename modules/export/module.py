"""The Draft Export Report (`--export`): index.html and the symbolic guard information pages.

The log is replayed in order, as tlparse reads it: each evaluated guard (`guard_added` with
prefix `eval`) and each data-dependent error (`propagate_real_tensors_provenance`) becomes a
failure row and a page (its numbered path comes from the central plan), fake-kernel problems
become failure rows, and expressions enter the provenance index only after the guards of their
own line. Where tlparse 0.4.3 panics (a missing field) tldb renders what is there and says what
is missing; entries tlparse rejects (frame locals written as lists by newer torch) and the
export kinds it ignores are listed in sections of their own, without touching the numbering.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from markupsafe import Markup

from tldb.module_api import EXPORT_MODE, Module, ModuleContext, ModuleOutput
from tldb.stacks import frames_of, load_strings, stack_html

from .provenance import ProvenanceIndex

GUARD_KINDS = ("guard_added", "propagate_real_tensors_provenance")
FAKE_KERNEL_KINDS = ("missing_fake_kernel", "mismatched_fake_kernel")
FAILURE_TYPES = {
    "guard_added": "Guard Evaluated",
    "propagate_real_tensors_provenance": "Data Dependent Error",
    "missing_fake_kernel": "Missing Fake Kernel",
    "mismatched_fake_kernel": "Mismatched Fake Kernel",
}
#: Fields tlparse unwraps (a missing one makes it panic); tldb reports them instead.
REQUIRED = {
    "guard_added": ("expr", "expr_node_id"),
    "propagate_real_tensors_provenance": ("expr", "result", "expr_node_id"),
    "missing_fake_kernel": ("op",),
    "mismatched_fake_kernel": ("op", "reason"),
}
FAKE_KERNEL_DOC = (
    "https://docs.google.com/document/d/1_W62p8WJOQQUzPsJYa7s701JXt0qf2OfLub2sbkHOaU/edit"
    "#heading=h.ahugy69p2jmz"
)


@dataclass
class Failure:
    """One row of the failure table (or of the table of entries tlparse cannot read)."""

    kind: str
    line: int
    fields: dict[str, str | None]
    missing: list[str]
    page: str | None = None
    why_unread: str = ""

    @property
    def title(self) -> str:
        return FAILURE_TYPES[self.kind]


@dataclass
class Replay:
    """What the index page needs, gathered while the log is replayed."""

    failures: list[Failure] = field(default_factory=list)
    unread: list[Failure] = field(default_factory=list)
    unread_other: Counter[str] = field(default_factory=Counter)
    index: ProvenanceIndex = field(default_factory=ProvenanceIndex)


def as_text(value: Any) -> str | None:
    """A log value as text; tolerant of the wrong types found in entries tlparse rejects."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return orjson.dumps(value).decode()


def safe_stack(value: Any, strings: dict[int, str], caption: str, open_: bool = False) -> Markup:
    """A stack as a trie; an unreadable one (only in rejected entries) renders empty."""
    try:
        return Markup(stack_html(frames_of(value), strings, caption, open_))
    except (KeyError, TypeError, AttributeError, ValueError):
        return Markup(stack_html([], strings, caption, open_))


def named_values(value: Any) -> list[tuple[str, str]] | None:
    """`name: value` lines of frame locals or symbols (None when the map is absent)."""
    if not isinstance(value, dict):
        return None
    return [(name, as_text(v) or "") for name, v in value.items() if v is not None]


def failure_of(kind: str, line: int, entry: dict[str, Any]) -> Failure:
    fields = {name: as_text(entry.get(name)) for name in ("expr", "result", "op", "reason")}
    missing = [name for name in REQUIRED[kind] if entry.get(name) is None]
    return Failure(kind, line, fields, missing)


def why_unread(entry: dict[str, Any]) -> str:
    frame_locals = entry.get("frame_locals")
    if isinstance(frame_locals, dict):
        for part in ("locals", "symbols"):
            values = frame_locals.get(part)
            if isinstance(values, dict) and any(isinstance(v, list) for v in values.values()):
                return (
                    f"its frame_locals.{part} values are lists, as newer torch versions write them"
                )
    return "one of its fields has a type tlparse does not expect"


class ExportReport(Module):
    id = "export"
    name = "Draft export report"
    subscriptions = ("envelopes", "outputs", "strings")
    modes = frozenset({EXPORT_MODE})

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        return ModuleOutput(files=self._files(ctx))

    def _files(self, ctx: ModuleContext) -> Iterator[tuple[str, str]]:
        strings = load_strings(ctx.db, ctx.log_id)
        replay = Replay()
        for row in ctx.query("entries"):
            meta = orjson.loads(row["metadata"])
            if not isinstance(meta, dict):
                continue
            if row["status"] == "ok":
                pages = orjson.loads(row["pages"]) if row["pages"] else {}
                yield from self._accepted(ctx, row["line"], meta, pages, strings, replay)
            else:
                folder = row["compile_dir"] or f"unknown_{row['line']}"
                yield from self._rejected(ctx, row["line"], meta, folder, strings, replay)
        yield "index.html", self._index(ctx, replay)

    def _accepted(self, ctx, line, meta, pages, strings, replay) -> Iterator[tuple[str, str]]:
        """One entry tlparse reads, handled in tlparse's order of kinds."""
        guard = meta.get("guard_added")
        if guard is not None and guard.get("prefix") != "eval":
            return  # tlparse skips the whole line, even other kinds in it
        for kind in GUARD_KINDS:
            entry = meta.get(kind)
            if entry is None:
                continue
            failure = failure_of(kind, line, entry)
            failure.page = pages.get(kind)
            replay.failures.append(failure)
            if failure.page:
                yield failure.page, self._page(ctx, failure, entry, strings, replay.index)
        for kind in FAKE_KERNEL_KINDS:
            entry = meta.get(kind)
            if entry is not None:
                replay.failures.append(failure_of(kind, line, entry))
        if meta.get("expression_created") is not None:
            replay.index.add_expression(line, meta["expression_created"])
        if meta.get("create_unbacked_symbol") is not None:
            replay.index.add_unbacked_symbol(line, meta["create_unbacked_symbol"])

    def _rejected(self, ctx, line, meta, folder, strings, replay) -> Iterator[tuple[str, str]]:
        """An entry tlparse drops as mistyped: failures get an unnumbered page of their own."""
        guard = meta.get("guard_added")
        if isinstance(guard, dict) and guard.get("prefix") != "eval":
            replay.unread_other["guard_added"] += 1
            return
        for kind in (*GUARD_KINDS, *FAKE_KERNEL_KINDS):
            entry = meta.get(kind)
            if not isinstance(entry, dict):
                continue
            failure = failure_of(kind, line, entry)
            failure.why_unread = why_unread(entry)
            if kind in GUARD_KINDS:
                suffix = "" if kind == "guard_added" or "guard_added" not in meta else "_2"
                failure.page = f"{folder}/symbolic_guard_information_line{line}{suffix}.html"
                yield failure.page, self._page(ctx, failure, entry, strings, replay.index)
            replay.unread.append(failure)
        for kind in ("expression_created", "create_unbacked_symbol"):
            if meta.get(kind) is not None:
                replay.unread_other[kind] += 1

    def _page(self, ctx, failure, entry, strings, index: ProvenanceIndex) -> str:
        frame_locals = entry.get("frame_locals")
        if not isinstance(frame_locals, dict):
            frame_locals = {}
        root = entry.get("expr_node_id")
        nodes = list(index.tree(root, strings)) if isinstance(root, int) else []
        return ctx.render(
            "guard.html",
            failure=failure,
            root=root,
            user_stack=safe_stack(entry.get("user_stack"), strings, "User Stack", True),
            framework_stack=safe_stack(entry.get("stack"), strings, "Framework Stack"),
            local_values=named_values(frame_locals.get("locals")),
            symbols=named_values(frame_locals.get("symbols")),
            nodes=nodes,
        )

    def _index(self, ctx: ModuleContext, replay: Replay) -> str:
        program = next(
            (
                entry.url
                for entries in ctx.directory.values()
                for entry in entries
                if "exported_program" in entry.url
            ),
            None,
        )
        return ctx.render(
            "report.html",
            failures=replay.failures,
            program=program,
            unread=replay.unread,
            unread_other=sorted(replay.unread_other.items()),
            unindexed=replay.index.unindexed,
            ignored=[self._ignored(row) for row in ctx.query("ignored")],
            fake_kernel_doc=FAKE_KERNEL_DOC,
        )

    @staticmethod
    def _ignored(row: dict[str, Any]) -> dict[str, Any]:
        """An export entry kind tlparse does not render, with its most telling fields."""
        meta = orjson.loads(row["metadata"])
        entry = meta.get(row["kind"]) if isinstance(meta, dict) else None
        details = []
        if isinstance(entry, dict):
            for name in ("expr", "unhinted_expr", "result", "expr_id"):
                if entry.get(name) is not None:
                    details.append((name, as_text(entry[name])))
        if row["payload"]:
            details.append(("payload", row["payload"]))
        return {"line": row["line"], "kind": row["kind"], "details": details}


MODULE = ExportReport()
