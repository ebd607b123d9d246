"""Provenance tracking pages (`--inductor-provenance`): which graph node became which kernel.

One page per compile directory, `provenance_tracking_{D}.html`, shows the pre-grad graph, the
post-grad graph and the generated code side by side; hovering or clicking a line highlights the
lines it came from or turned into. As in tlparse 0.4.3 the inputs of directory D are the latest
files written so far whose path contains `D/<name>` (so files under a raw, unnormalized folder
such as `-_0_0_-` are not found), and D is `(unknown)` for an unreadable compile id.

Only files whose content is their payload (or its reformatted JSON, or the output code page)
are candidates: a dump_file page, a payloads/ copy or a readable stack-trace page would need a
crafted name to match, and reading them would mean re-rendering another module's output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tldb import jsonfmt
from tldb.envelope import CompileId
from tldb.highlight import highlight_page
from tldb.module_api import (
    DEFAULT_MODE,
    IndexContribution,
    Module,
    ModuleContext,
    ModuleOutput,
    lines_of,
)

from .line_mappings import aot_id_line, code_lines, line_mappings

#: The inputs of a page, each with the file names tried in order of preference.
ROLES = {
    "pre": ("before_pre_grad_graph", "inductor_pre_grad_graph"),
    "post": ("after_post_grad_graph", "inductor_post_grad_graph"),
    "py": ("inductor_output_code",),
    "cpp": ("inductor_aot_wrapper_code",),
    "mappings": ("inductor_provenance_tracking_node_mappings",),
}
PATTERNS = tuple(p for patterns in ROLES.values() for p in patterns)
UNKNOWN = "(unknown)"


@dataclass
class Source:
    """A file a page reads: where it was written and how to get its content back."""

    path: str
    kind: str
    parser: str
    envelope_id: int


@dataclass
class Block:
    """One code listing of the page. Mapping line n is the listing's line n + shift."""

    kind: str
    title: str
    path: str
    lines: list[str]
    shift: int = 0


def directory_names(ctx: ModuleContext) -> list[str]:
    """Folder names of the compile directory (normalized ids), in first-appearance order."""
    names: dict[str, None] = {}
    for row in ctx.query("directories"):
        if row["unknown"]:
            names.setdefault(UNKNOWN, None)
            continue
        cid = CompileId(
            row["compiled_autograd_id"], row["frame_id"], row["frame_compile_id"], row["attempt"]
        )
        names.setdefault(cid.normalized().directory(), None)
    return list(names)


def owners(path: str, pattern: str, names: set[str]) -> set[str]:
    """The directory names D for which `path` contains `D/pattern` (D never holds a '/')."""
    found: set[str] = set()
    at = path.find("/" + pattern)
    while at >= 0:
        segment = path[:at].rpartition("/")[2]
        found.update(segment[i:] for i in range(len(segment)) if segment[i:] in names)
        at = path.find("/" + pattern, at + 1)
    return found


def latest_sources(ctx: ModuleContext, names: list[str]) -> dict[str, dict[str, Source]]:
    """For each directory name, its input per role: the latest file of the first pattern found."""
    wanted = set(names)
    latest: dict[tuple[str, str], Source] = {}
    for row in ctx.query("sources", plain=int(ctx.config.plain_text)):
        source = Source(row["path"], row["kind"], row["parser"], row["envelope_id"])
        for pattern in PATTERNS:
            for name in owners(source.path, pattern, wanted):
                latest[(name, pattern)] = source  # rows come in output order: later wins
    chosen: dict[str, dict[str, Source]] = {name: {} for name in names}
    for name in names:
        for role, patterns in ROLES.items():
            found = next((latest[(name, p)] for p in patterns if (name, p) in latest), None)
            if found is not None:
                chosen[name][role] = found
    return chosen


def payload(ctx: ModuleContext, source: Source | None) -> str:
    if source is None:
        return ""
    return next(ctx.query("payload", envelope_id=source.envelope_id))["text"]


def code_page(code: str) -> str:
    """The output-code page as tldb writes it, up to the end of its `<pre>`.

    tlparse counts Python lines on its HTML page, which ends there; tldb's page goes on with a
    colouring script, whose text must not be searched for kernel names.
    """
    page = highlight_page(code)
    end = page.find("\n</pre>\n")  # the code is escaped: its own text holds no </pre>
    return page if end < 0 else page[: end + len("\n</pre>\n")]


def written(ctx: ModuleContext, source: Source | None, text: str) -> str:
    """The content of the file as the report wrote it, from its payload."""
    if source is None:
        return ""
    if source.parser == "inductor_output_code":
        return text if ctx.config.plain_text else code_page(text)
    if source.kind == "reformat":
        try:
            return jsonfmt.dumps_pretty(jsonfmt.loads_like_serde(text))
        except ValueError:
            return text
    return text


def mappings_script(mappings: dict) -> str:
    """Pretty JSON (sorted keys) safe inside <script>: no '<', '>' or '&' survive as such."""
    text = jsonfmt.dumps_pretty(mappings)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_blocks(ctx: ModuleContext, sources: dict[str, Source]) -> tuple[list[Block], dict]:
    """The four listings of a page and its line mappings."""
    texts = {role: payload(ctx, sources.get(role)) for role in ROLES}
    contents = {role: written(ctx, sources.get(role), texts[role]) for role in ROLES}
    mappings = line_mappings(
        contents["mappings"], contents["pre"], contents["post"], contents["py"], contents["cpp"]
    )

    def block(role: str, title: str, text: str, shift: int = 0) -> Block:
        path = sources[role].path if role in sources else ""
        return Block(role, title, path, lines_of(text), shift)

    # Mapping numbers count lines of what tlparse searched: leading empty lines dropped, Python
    # numbers relative to the `# AOT ID:` line, and in an output code page one line (the <pre>)
    # before the code. The listing shows the code itself, so it moves by as many lines.
    py = sources.get("py")
    py_page = py is not None and py.parser == "inductor_output_code" and not ctx.config.plain_text
    py_lines, py_dropped = code_lines(contents["py"])
    py_shift = aot_id_line(py_lines) + py_dropped - (1 if py_page else 0)
    cpp_shift = code_lines(contents["cpp"])[1]
    blocks = [
        block("pre", "Pre-grad graph", contents["pre"]),
        block("post", "Post-grad graph", contents["post"]),
        block("py", "Python wrapper code", texts["py"] if py_page else contents["py"], py_shift),
        block("cpp", "AOTInductor C++ wrapper code", contents["cpp"], cpp_shift),
    ]
    return blocks, mappings


class Provenance(Module):
    id = "provenance"
    name = "Inductor provenance tracking"
    subscriptions = ("envelopes", "outputs", "payloads")
    modes = frozenset({DEFAULT_MODE})

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        if not ctx.config.inductor_provenance:
            return ModuleOutput()
        names = directory_names(ctx)
        section = ctx.render("section.html", names=names)
        return ModuleOutput(
            files=self._pages(ctx, names), index_html=[IndexContribution("provenance", section)]
        )

    def _pages(self, ctx: ModuleContext, names: list[str]) -> Iterator[tuple[str, str]]:
        for name, sources in latest_sources(ctx, names).items():
            blocks, mappings = page_blocks(ctx, sources)
            page = ctx.render(
                "page.html",
                name=name,
                panes=[blocks[:1], blocks[1:2], blocks[2:]],
                mappings=mappings_script(mappings),
            )
            yield f"provenance_tracking_{name}.html", page


MODULE = Provenance()
