"""Node-level provenance turned into line-level provenance, with tlparse 0.4.3's exact rules.

Inductor logs which pre-grad nodes became which post-grad nodes, and which kernels came from
which post-grad nodes (`inductor_provenance_tracking_node_mappings`). The provenance page needs
line numbers instead: the line of each node in the two graph dumps and the lines of each kernel
in the generated Python or C++ wrapper. The numbers must equal tlparse's, quirks included (the
Python lines are counted on the highlighted HTML file, Python kernel names are cut at the first
`:` but C++ ones at the last, an `# AOT ID:` line shifts Python numbers), so the page can be
checked against tlparse's and its numbers stay meaningful to people who know tlparse.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from itertools import dropwhile
from typing import Any

from tldb import jsonfmt
from tldb.module_api import lines_of

#: Characters Rust's `str::trim` removes (Unicode White_Space); Python's strip() removes more.
_RUST_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: tlparse stores line numbers as usize: a negative Python offset wraps around.
_USIZE = 2**64

LineMap = dict[int, list[int]]


def _trim(text: str) -> str:
    return text.strip(_RUST_SPACE)


def _meaningful(line: str, prefix: str) -> bool:
    """Not blank and not starting (after trimming) with `prefix`."""
    trimmed = _trim(line)
    return bool(trimmed) and not trimmed.startswith(prefix)


def node_lines(graph: str) -> dict[str, int]:
    """FX node name -> 1-based line of the graph dump (`name: type = ...` or `name = ...`)."""
    found: dict[str, int] = {}
    for number, line in enumerate(lines_of(graph), 1):
        if not _meaningful(line, "#"):
            continue
        name = _trim(_trim(line).split("=", 1)[0].split(":", 1)[0])
        if name:
            found[name] = number  # a later line with the same name wins
    return found


def code_lines(code: str) -> tuple[list[str], int]:
    """The lines searched for kernels (leading empty lines dropped), and how many were dropped."""
    lines = lines_of(code)
    kept = list(dropwhile(lambda line: line == "", lines))
    return lines_of("\n".join(kept)), len(lines) - len(kept)


def _first(lines: list[str], test: Callable[[str], bool]) -> int:
    return next((i for i, line in enumerate(lines) if test(line)), 0)


def aot_id_line(lines: list[str]) -> int:
    """Index of the `# AOT ID:` line, 0 if none: Python line numbers count from there."""
    return _first(lines, lambda line: "# AOT ID:" in line)


def _launches(
    lines: list[str],
    start: int,
    kernels: Iterable[str],
    pure_of: Callable[[str], str],
    one_launch: Callable[[list[str], int, str, str], int | None],
) -> dict[str, list[int]]:
    """Kernel name -> 0-based indices of the lines launching it, from `start` on.

    A name with a debug handle (`kernel:3`) marks one launch, which `one_launch` finds; without
    a handle, or when that finds nothing, every line naming the kernel counts.
    """
    found: dict[str, list[int]] = {}
    for kernel in kernels:
        pure = pure_of(kernel)
        one = one_launch(lines, start, kernel, pure) if ":" in kernel else None
        hits = (
            [one] if one is not None else [i for i in range(start, len(lines)) if pure in lines[i]]
        )
        if hits:
            found[kernel] = hits
    return found


def _python_launch(lines: list[str], start: int, kernel: str, pure: str) -> int | None:
    """The line after the first one naming `kernel` that names `pure` (one try only)."""
    named = next((i for i in range(start, len(lines)) if kernel in lines[i]), None)
    if named is None:
        return None
    return next((j for j in range(named + 1, len(lines)) if pure in lines[j]), None)


def python_kernel_lines(code: str, kernels: Iterable[str]) -> dict[str, list[int]]:
    """Kernel name -> the lines of the Python wrapper (`call`) that launch it.

    Names are cut at their first `:`; numbers count from the `# AOT ID:` line.
    """
    lines, _ = code_lines(code)
    start = _first(lines, lambda line: "def" in line and "call" in line and "(args)" in line)
    base = aot_id_line(lines)
    found = _launches(lines, start, kernels, lambda k: k.split(":", 1)[0], _python_launch)
    return {k: [(i + 1 - base) % _USIZE for i in hits] for k, hits in found.items()}


def _cpp_call(line: str, pure: str) -> bool:
    """A line naming the kernel that is not its element-count declaration (`k_xnumel = 4;`).

    Only that exact spelling is skipped: 0.4.3 takes `k_xnumel_1 = 4;` for a call (later
    tlparse versions also skip it, with a regular expression).
    """
    return pure in line and "_xnumel = " not in line


def _cpp_launch(lines: list[str], start: int, kernel: str, pure: str) -> int | None:
    """After a line naming `kernel` (not its definition), the next call of `pure`.

    Unlike the Python variant, a named line without such a call moves on to the next one.
    """
    for i in range(start, len(lines)):
        line = lines[i]
        if _meaningful(line, "def") and _meaningful(line, "static inline void") and kernel in line:
            call = next((j for j in range(i + 1, len(lines)) if _cpp_call(lines[j], pure)), None)
            if call is not None:
                return call
    return None


def cpp_kernel_lines(code: str, kernels: Iterable[str]) -> dict[str, list[int]]:
    """Kernel name -> the lines of the AOTInductor C++ wrapper (`::run_impl(`) that launch it.

    Names are cut at their last `:`; numbers count the lines kept by `code_lines`.
    """
    lines, _ = code_lines(code)
    start = _first(lines, lambda line: "::run_impl(" in line)
    found = _launches(lines, start, kernels, lambda k: k.rsplit(":", 1)[0], _cpp_launch)
    return {k: [i + 1 for i in hits] for k, hits in found.items()}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _nodes_to_nodes(mapping: dict, source: dict[str, int], target: dict[str, int]) -> LineMap:
    out: LineMap = {}
    for node in sorted(mapping):
        if node in source:
            lines = [target[t] for t in _strings(mapping[node]) if t in target]
            if lines:
                out[source[node]] = lines
    return out


def _kernels_to_nodes(
    mapping: dict, kernels: dict[str, list[int]], post: dict[str, int]
) -> LineMap:
    out: LineMap = {}
    for kernel in sorted(mapping):
        lines = [post[n] for n in _strings(mapping[kernel]) if n in post]
        if lines:
            for line in kernels.get(kernel, ()):
                out[line] = lines
    return out


def _nodes_to_kernels(
    mapping: dict, post: dict[str, int], kernels: dict[str, list[int]]
) -> LineMap:
    out: LineMap = {}
    for node in sorted(mapping):
        if node in post:
            lines = [line for k in _strings(mapping[node]) for line in kernels.get(k, ())]
            if lines:
                out[post[node]] = lines
    return out


def _parse(text: str) -> Any:
    """The node mappings as serde_json reads them; ValueError where serde_json fails."""
    try:
        return jsonfmt.loads_like_serde(text)
    except ValueError:
        # orjson refuses integers beyond 64 bits, which serde_json reads as floats.
        return json.loads(text, parse_constant=_reject)


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def line_mappings(mappings: str, pre: str, post: str, py_code: str, cpp_code: str) -> dict:
    """The six line maps of a provenance page (`{}` when the node mappings are not JSON).

    `py_code` is the Python output code as tlparse reads it: the highlighted HTML page unless
    the report is plain text.
    """
    try:
        parsed = _parse(mappings)
    except ValueError:
        return {}
    nodes = parsed if isinstance(parsed, dict) else {}

    def section(key: str) -> dict:
        value = nodes.get(key)
        return value if isinstance(value, dict) else {}

    kernel_names = list(section("cppCodeToPost"))
    pre_lines, post_lines = node_lines(pre), node_lines(post)
    py_lines = python_kernel_lines(py_code, kernel_names)
    cpp_lines = cpp_kernel_lines(cpp_code, kernel_names)
    maps = {
        "preToPost": _nodes_to_nodes(section("preToPost"), pre_lines, post_lines),
        "postToPre": _nodes_to_nodes(section("postToPre"), post_lines, pre_lines),
        "pyCodeToPost": _kernels_to_nodes(section("cppCodeToPost"), py_lines, post_lines),
        "postToPyCode": _nodes_to_kernels(section("postToCppCode"), post_lines, py_lines),
        "cppCodeToPost": _kernels_to_nodes(section("cppCodeToPost"), cpp_lines, post_lines),
        "postToCppCode": _nodes_to_kernels(section("postToCppCode"), post_lines, cpp_lines),
    }
    return {name: {str(k): v for k, v in lines.items()} for name, lines in maps.items()}
