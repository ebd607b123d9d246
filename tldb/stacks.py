"""Stack frames and stack tries, rendered as tlparse renders them.

Used by several modules (the index's stack trie, compilation metrics pages, export pages), so
it lives in the core. Frames come from envelope JSON: `{filename: <index into the log's str
table>, line, name, loc?, uninterned_filename?}`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape
from typing import Any

import sqlite_utils

from tldb.module_api import encode_text

_SEED_NSPID = re.compile(r"[^/]+-seed-nspid[^/]+/")
_EVAL_WITH_KEY = re.compile(r"<eval_with_key>\.([0-9]+)")
_CONVERT_FRAME = "torch/_dynamo/convert_frame.py"
_CONVERT_FRAME_SUFFIXES = (
    ("catch_errors", "_convert_frame", "_convert_frame_assert"),
    ("__call__", "__call__", "__call__"),
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame; equal frames share a trie node."""

    filename: int
    line: int
    name: str
    loc: str | None = None
    uninterned_filename: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frame:
        return cls(
            data["filename"],
            data["line"],
            data["name"],
            data.get("loc"),
            data.get("uninterned_filename"),
        )


def frames_of(stack: Iterable[dict[str, Any]] | None) -> list[Frame]:
    return [Frame.from_json(f) for f in stack or ()]


def load_strings(db: sqlite_utils.Database, log_id: int) -> dict[int, str]:
    """The log's filename table (index -> path)."""
    return dict(db.conn.execute("SELECT idx, value FROM strings WHERE log_id = ?", [log_id]))


def simplify_filename(filename: str) -> str:
    """Shorten build-system paths: the part after `#link-tree/`, or after a `-seed-nspid` dir."""
    parts = filename.split("#link-tree/")
    if len(parts) > 1:
        return parts[1]
    found = _SEED_NSPID.search(filename)
    return filename[found.end() :] if found else filename


def filename_of(frame: Frame, strings: dict[int, str]) -> str:
    if frame.uninterned_filename is not None:
        return frame.uninterned_filename
    return strings.get(frame.filename, "(unknown)")


def eval_with_key_id(filename: str) -> int | None:
    """The K of an FX-generated `<eval_with_key>.K` file name (its dump_file page number)."""
    found = _EVAL_WITH_KEY.search(filename)
    return int(found.group(1)) if found else None


@functools.lru_cache(maxsize=4096)
def _shown_filename(filename: str) -> tuple[str, int | None]:
    """A frame's file as shown (simplified, escaped) and its FX dump page number, if any.
    A log's stacks repeat a few hundred file names over thousands of frames, and the two
    regular expressions were most of a frame's cost."""
    return encode_text(simplify_filename(filename)), eval_with_key_id(filename)


def frame_html(frame: Frame, strings: dict[int, str]) -> str:
    """`file:line in name` plus the source line; FX-generated files link to their dump page."""
    shown, fx = _shown_filename(filename_of(frame, strings))
    if fx is not None:
        return (
            f"<a href='dump_file/eval_with_key_{fx}.html#L{frame.line}'>"
            f"{shown}:{frame.line}</a> in {encode_text(frame.name)}"
        )
    return (
        f"{shown}:{frame.line} in {encode_text(frame.name)}<br>&nbsp;&nbsp;&nbsp;&nbsp;"
        f"{encode_text(frame.loc or '')}"
    )


def strip_convert_frame(frames: list[Frame], strings: dict[int, str]) -> list[Frame]:
    """Drop Dynamo's own convert_frame frames at the end of a dynamo_start stack."""
    for names in _CONVERT_FRAME_SUFFIXES:
        tail = frames[-3:]
        if len(tail) == 3 and all(
            simplify_filename(filename_of(f, strings)) == _CONVERT_FRAME and f.name == n
            for f, n in zip(tail, names, strict=True)
        ):
            frames = frames[:-3]
    return frames


@dataclass
class _Node:
    terminals: list[str | None] = field(default_factory=list)
    children: dict[Frame, _Node] = field(default_factory=dict)


class StackTrie:
    """Stacks merged by common prefix; a terminal (a compile id label, or None) marks an end."""

    def __init__(self) -> None:
        self.root = _Node()

    def insert(self, frames: Iterable[Frame], terminal: str | None = None) -> None:
        node = self.root
        for frame in frames:
            node = node.children.setdefault(frame, _Node())
        node.terminals.append(terminal)

    def insert_no_terminal(self, frames: Iterable[Frame]) -> None:
        node = self.root
        for frame in frames:
            node = node.children.setdefault(frame, _Node())

    def is_empty(self) -> bool:
        return not self.root.children and not self.root.terminals

    def to_json(self, strings: dict[int, str]) -> list[dict[str, Any]]:
        """The trie as nested objects: frame text, terminals here, children."""

        def node_json(frame: Frame, node: _Node) -> dict[str, Any]:
            return {
                "filename": simplify_filename(filename_of(frame, strings)),
                "line": frame.line,
                "name": frame.name,
                "loc": frame.loc,
                "compile_ids": [t for t in node.terminals if t is not None],
                "children": [node_json(f, n) for f, n in node.children.items()],
            }

        return [node_json(f, n) for f, n in self.root.children.items()]

    def render(
        self,
        strings: dict[int, str],
        caption: str,
        open_: bool = False,
        status: Callable[[str], str] | None = None,
    ) -> str:
        """`<details>` with the trie as nested lists; `status(label)` gives a terminal's class."""
        out = [f"<details{' open' if open_ else ''}><summary>{caption}</summary>"]
        out.append("<div class='stack-trie'><ul>")
        self._render(self.root, strings, status, out)
        out.append("</ul></div></details>")
        return "".join(out)

    def _render(self, node: _Node, strings, status, out: list[str]) -> None:
        branching = len(node.children) > 1
        for frame, child in node.children.items():
            # A label is `[0/0]` from a log, but any text from a database made elsewhere.
            marks = (
                "".join(
                    "(unknown) "
                    if t is None
                    else f"<a href='#{escape(t)}' class='{escape(status(t)) if status else 'status-missing'}'>"
                    f"{escape(t)}</a> "
                    for t in child.terminals
                )
                if child.terminals
                else ""
            )
            text = frame_html(frame, strings)
            if branching:
                out.append(
                    f"<li><span onclick='toggleList(this)' class='marker'></span>{marks}\n{text}<ul>\n"
                )
                self._render(child, strings, status, out)
                out.append("</ul></li>")
            else:
                out.append(f"<li>{marks}{text}</li>\n")
                self._render(child, strings, status, out)


def stack_html(
    frames: Iterable[Frame], strings: dict[int, str], caption: str, open_: bool = False
) -> str:
    """A single stack as a (linear) trie, as on metrics and guard pages."""
    trie = StackTrie()
    trie.insert_no_terminal(frames)
    return trie.render(strings, caption, open_)
