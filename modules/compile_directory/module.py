"""compile_directory.json and the "Build products" list of index.html.

Runs late, after every other module, so the directory it writes includes entries that other
modules contributed on top of the central numbered plan.

Entries logged inside a regional-Inductor subgraph (envelopes with a `subgraph_name`, torch
2.13+) get "Subgraph Name: ..." headers in the list, as tlparse's later versions show them:
runs of one name in log order, the files themselves staying where they are. A log without
`subgraph_name` gets no header at all (tlparse 0.4.3's page).
"""

from __future__ import annotations

from collections.abc import Iterator

from markupsafe import Markup

from tldb import jsonfmt
from tldb.module_api import (
    DEFAULT_MODE,
    DirectoryEntry,
    IndexContribution,
    Module,
    ModuleContext,
    ModuleOutput,
    autoescape_text,
    safe_href,
)


def _label(key: str) -> str:
    return "(unknown)" if key == "unknown" else key


def directory_json(directory: dict[str, list[DirectoryEntry]]) -> Iterator[str]:
    """compile_directory.json (sorted keys, pretty), written one compile id at a time."""
    first = True
    for key in sorted(directory):
        artifacts = [
            {
                "name": entry.name.rpartition("/")[2],
                "number": entry.number,
                "readable_url": entry.readable_url,
                "suffix": entry.suffix,
                "url": entry.url,
            }
            for entry in directory[key]
        ]
        body = jsonfmt.dumps_pretty({"artifacts": artifacts}).replace("\n", "\n  ")
        yield ("{\n  " if first else ",\n  ") + jsonfmt.dumps_compact(key) + ": " + body
        first = False
    yield "{}" if first else "\n}"


def subgraph_groups(
    entries: list[DirectoryEntry], names: dict[int, str]
) -> list[tuple[str | None, DirectoryEntry]]:
    """Each entry with the group header to put before it (None: no header). A group starts
    where the entry's subgraph name (`names` by output number, "" outside any subgraph)
    differs from the previous entry's; the list starts outside any subgraph, so entries before
    the first named one get no header, and a return to "" gets an empty header line."""
    previous = ""
    grouped = []
    for entry in entries:
        name = names.get(entry.number, "")
        grouped.append((name if name != previous else None, entry))
        previous = name
    return grouped


def entries_html(entries: list[tuple[str | None, DirectoryEntry]]) -> Markup:
    """One compile id's lines of the list (from subgraph_groups), escaped as the template's
    autoescape escapes them. Made here rather than by a loop in the template: the benchmark
    log lists 22,000 files, and the loop's escape calls and attribute look-ups were most of
    this module's time (0.7 s), on the critical path since the module runs late, alone."""
    parts = []
    for group, entry in entries:
        parts.append("\n")
        if group is not None:
            name = f"Subgraph Name: {autoescape_text(group)}" if group else ""
            parts.append(f'<li style="margin-top: 0.5em">{name}</li>\n')
        parts.append(
            f'<li><a href="{autoescape_text(safe_href(entry.url))}">'
            f"{autoescape_text(entry.name)}</a>"
        )
        if entry.readable_url:
            parts.append(f' (<a href="{autoescape_text(entry.readable_url)}">readable_html</a>)')
        parts.append(
            f" {autoescape_text(entry.suffix)} ({autoescape_text(str(entry.number))})</li>\n"
        )
    return Markup("".join(parts))


class CompileDirectory(Module):
    id = "compile_directory"
    name = "Compile directory"
    subscriptions = ("outputs", "envelopes")
    modes = frozenset({DEFAULT_MODE})
    late = True

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        names = {row["number"]: row["subgraph_name"] for row in ctx.query("subgraphs")}
        page = ctx.render(
            "directory.html",
            directory=[
                (key, _label(key), entries_html(subgraph_groups(entries, names)))
                for key, entries in ctx.directory.items()
            ],
        )
        return ModuleOutput(
            files=[("compile_directory.json", directory_json(ctx.directory))],
            index_html=[IndexContribution("directory", page)],
        )


MODULE = CompileDirectory()
