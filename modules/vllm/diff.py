"""Side-by-side line diffs for the pass diff pages: unified-diff hunks (3 lines of context),
each drawn as rows of old number | old text | new number | new text, a run of deleted lines
paired row by row with the lines inserted in its place (as code review tools show it)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One table row: a hunk header (`hunk` set) or a line pair; a side may be blank."""

    hunk: str | None = None
    old_number: int | None = None
    old_text: str = ""
    old_class: str = ""
    new_number: int | None = None
    new_text: str = ""
    new_class: str = ""


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def _span(start: int, stop: int) -> str:
    """A unified-diff range: 1-based start and length (the start is the line before, and the
    length 0, for an empty side)."""
    length = stop - start
    if length == 0:
        return f"{start},0"
    return f"{start + 1},{length}" if length > 1 else f"{start + 1}"


def diff_rows(before: str, after: str) -> list[Row]:
    """The rows of every hunk, or [] when the two texts have the same lines."""
    old, new = _lines(before), _lines(after)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    rows: list[Row] = []
    for group in matcher.get_grouped_opcodes(3):
        i1, j1 = group[0][1], group[0][3]
        i2, j2 = group[-1][2], group[-1][4]
        rows.append(Row(hunk=f"-{_span(i1, i2)} +{_span(j1, j2)}"))
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                rows.extend(
                    Row(None, a + 1, old[a], "", b + 1, new[b], "")
                    for a, b in zip(range(a1, a2), range(b1, b2), strict=True)
                )
                continue
            deleted, inserted = range(a1, a2), range(b1, b2)
            for k in range(max(len(deleted), len(inserted))):
                left = k < len(deleted)
                right = k < len(inserted)
                rows.append(
                    Row(
                        None,
                        deleted[k] + 1 if left else None,
                        old[deleted[k]] if left else "",
                        "diff-del" if left else "",
                        inserted[k] + 1 if right else None,
                        new[inserted[k]] if right else "",
                        "diff-add" if right else "",
                    )
                )
    return rows
