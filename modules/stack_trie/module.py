"""The index's stack tries: where compilations started, and stacks logged without a compile id.

The main trie merges the stack of every `dynamo_start` (minus Dynamo's own convert_frame
frames) and marks where each compile id began, coloured by how its compilation went. The second
trie, shown only when there is one, collects envelopes that carried a stack at top level.
"""

from __future__ import annotations

import orjson

from tldb.module_api import DEFAULT_MODE, IndexContribution, Module, ModuleContext, ModuleOutput
from tldb.stack_records import stack_records
from tldb.stacks import StackTrie, frames_of, load_strings, strip_convert_frame

MISSING = "status-missing"


class Terminal(str):
    """A compile id label that also knows its colour: two ends with the same label can differ
    (`[0/0]` logged with and without an attempt), so the colour cannot come from the label."""

    status: str = MISSING

    def __new__(cls, label: str, status: str) -> Terminal:
        terminal = super().__new__(cls, label)
        terminal.status = status
        return terminal


def _status_of(terminal: str) -> str:
    return getattr(terminal, "status", MISSING)


class StackTries(Module):
    id = "stack_trie"
    name = "Stack trie"
    subscriptions = ("records", "strings")
    modes = frozenset({DEFAULT_MODE})
    cost = 2

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        strings = load_strings(ctx.db, ctx.log_id)
        rows = list(stack_records(ctx))  # one pass, shared with compilation_metrics
        statuses = metrics_statuses(rows)
        trie = StackTrie()
        for row in rows:
            if row["start_stack"] is None:
                continue
            frames = strip_convert_frame(frames_of(orjson.loads(row["start_stack"])), strings)
            if row["label"] == "unknown":
                trie.insert(frames, None)
            else:
                status = statuses.get(row["raw_key"], MISSING)
                trie.insert(frames, Terminal(row["label"], status))
        sections = [
            IndexContribution(
                "stack_trie",
                ctx.render(
                    "stack_trie.html", trie=trie.render(strings, "Stack", status=_status_of)
                ),
            )
        ]
        unknown = StackTrie()
        for row in rows:
            if row["top_stack"] is not None:
                unknown.insert(frames_of(orjson.loads(row["top_stack"])), None)
        if not unknown.is_empty():
            html = ctx.render("unknown_stacks.html", trie=unknown.render(strings, "Stack"))
            sections.append(IndexContribution("unknown_stacks", html))
        return ModuleOutput(index_html=sections)


def metrics_statuses(rows: list[dict]) -> dict[str, str]:
    """The trie colour of each compile id with compilation_metrics: worst first, any failure,
    then any empty graph, then any restart (see tldb/stack_records.py)."""
    worst: dict[str, list[bool]] = {}
    for row in rows:
        if row["has_metrics"]:
            seen = worst.setdefault(row["metrics_key"], [False, False, False])
            for i, column in enumerate(("failed", "empty", "restarted")):
                seen[i] = seen[i] or bool(row[column])
    return {key: _status_from(seen) for key, seen in worst.items()}


def _status_from(seen: list[bool]) -> str:
    failed, empty, restarted = seen
    if failed:
        return "status-error"
    if empty:
        return "status-empty"
    return "status-break" if restarted else "status-ok"


MODULE = StackTries()
