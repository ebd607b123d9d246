"""The landing's chromium_events.json from the ranks' own chromium_events.json files.

tlparse's all-rank trace is every rank's events, ranks ascending, each event object with its
`pid` set to the rank. Each rank's render has already parsed and formatted exactly those events
(same payloads, same order, same layout) into rank_N/chromium_events.json; only the `pid`
differs. Parsing and re-formatting every payload again in the one process that writes the
landing took most of the cross-rank stage (22 s of it at 1,024 ranks); rewriting the `pid` lines
of the ranks' files is a byte substitution.

The substitution is only used where it is provably the same as re-formatting: the file has the
layout tldb writes (a pretty array, two-space indent), every top-level element is an object
whose lines start `  {` and end `  }`, and each such object has exactly one top-level `pid`
line with a scalar value. Anything else (an event without a pid, a pid that is an object, an
array element that is not an object, a file that is missing or not tldb's) returns None, and
the caller formats that rank's events from the database as before.
"""

from __future__ import annotations

import re
from pathlib import Path

#: A top-level `"pid": <scalar>` key line of an element (nested keys are indented further), found
#: from its literal start (so the scan is a fast substring search, not a try at every byte).
_PID_LINE = re.compile(
    rb'\n    "pid": (?:-?[0-9][0-9.eE+-]*|"(?:[^"\\\n]|\\.)*"|true|false|null)(?=,?\n)'
)
_PID_KEY = b'\n    "pid": '


def _object_elements(inner: bytes) -> int | None:
    """How many elements the array body holds, if every one is a multi-line object (`  {` to
    `  }`); None if any element is something else. In tldb's (and serde's) layout, only
    top-level elements have lines at the array's indent (two spaces): such an object opens with
    a `  {` line and closes with a `  }` line, and two objects side by side meet as
    `  },` then `  {`. So the elements are all objects exactly when the body starts with one and
    ends with one, and every object but the first follows another object. Two searches of the
    body (a third one, counting every line at that indent, took as long as both)."""
    if not (inner.startswith(b"  {\n") and inner.endswith(b"\n  }")):
        return None
    objects = 1 + inner.count(b"\n  {\n")
    return objects if inner.count(b"\n  },\n  {\n") == objects - 1 else None


def rank_fragment(path: Path | None, rank: int) -> bytes | None:
    """The elements of one rank's chromium_events.json with each object's pid set to `rank`,
    without the array's brackets (b"" for a rank with no events), or None when the file
    cannot be rewritten safely (see the module docstring)."""
    if path is None:
        return None
    try:
        text = path.read_bytes()
    except OSError:
        return None
    if text == b"[]":
        return b""
    if not (text.startswith(b"[\n") and text.endswith(b"\n]")):
        return None
    inner = text[2:-2]
    objects = _object_elements(inner)
    if objects is None or inner.count(_PID_KEY) != objects:
        return None
    replaced, count = _PID_LINE.subn(b'\n    "pid": %d' % rank, inner)
    return replaced if count == objects else None
