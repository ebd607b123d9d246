"""The provenance index of symbolic expressions, and the trees drawn from it.

Draft export logs one `expression_created` entry per symbolic operation (with the ids of its
arguments) and one `create_unbacked_symbol` entry per fresh symbol. A guard or data-dependent
error names the expression it is about (`expr_node_id`); its provenance is that expression and,
depth first, everything it was computed from. The index is built while replaying the log in
order, so a guard only sees what was logged before it (as in tlparse), and a later entry with
the same id replaces the earlier one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from tldb.stacks import frames_of, stack_html


@dataclass
class ExprNode:
    """One indexed expression or unbacked symbol; its stacks are rendered on first use."""

    result: str | None
    method: str | None
    arguments: list[str] | None
    argument_ids: list[int]
    user_stack: list[dict[str, Any]] | None
    stack: list[dict[str, Any]] | None
    _html: tuple[Markup, Markup] | None = None

    def stacks_html(self, strings: dict[int, str]) -> tuple[Markup, Markup]:
        if self._html is None:
            self._html = (
                Markup(stack_html(frames_of(self.user_stack), strings, "User Stack", True)),
                Markup(stack_html(frames_of(self.stack), strings, "Stack")),
            )
        return self._html


@dataclass(frozen=True)
class TreeNode:
    """A node as drawn on a guard page: its card is indented by `depth` levels."""

    depth: int
    result: str
    method: str
    arguments: str
    user_stack: Markup
    stack: Markup


class ProvenanceIndex:
    """Expressions by id, as logged so far."""

    def __init__(self) -> None:
        self.nodes: dict[int, ExprNode] = {}
        #: Entries that could not be indexed: (line, kind, missing id field).
        self.unindexed: list[tuple[int, str, str]] = []

    def add_expression(self, line: int, entry: dict[str, Any]) -> None:
        result_id = entry.get("result_id")
        if result_id is None:
            self.unindexed.append((line, "expression_created", "result_id"))
            return
        self.nodes[result_id] = ExprNode(
            entry.get("result"),
            entry.get("method"),
            entry.get("arguments"),
            entry.get("argument_ids") or [],
            entry.get("user_stack"),
            entry.get("stack"),
        )

    def add_unbacked_symbol(self, line: int, entry: dict[str, Any]) -> None:
        node_id = entry.get("node_id")
        if node_id is None:
            self.unindexed.append((line, "create_unbacked_symbol", "node_id"))
            return
        self.nodes[node_id] = ExprNode(
            entry.get("symbol"), None, None, [], entry.get("user_stack"), entry.get("stack")
        )

    def tree(self, root: int, strings: dict[int, str]) -> Iterator[TreeNode]:
        """Pre-order walk from `root` along argument ids; each id at most once, unknown ids
        skipped. Iterative, so very deep expression chains cannot exhaust the call stack."""
        seen: set[int] = set()
        pending: list[tuple[int, int]] = [(root, 0)]
        while pending:
            node_id, depth = pending.pop()
            node = self.nodes.get(node_id)
            if node is None or node_id in seen:
                continue
            seen.add(node_id)
            user_stack, stack = node.stacks_html(strings)
            yield TreeNode(
                depth,
                node.result or "",
                node.method or "",
                ", ".join(node.arguments or ()),
                user_stack,
                stack,
            )
            pending.extend((child, depth + 1) for child in reversed(node.argument_ids))
