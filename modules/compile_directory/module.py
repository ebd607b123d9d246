"""compile_directory.json and the "Build products" list of index.html.

Runs late, after every other module, so the directory it writes includes entries that other
modules contributed on top of the central numbered plan.
"""

from __future__ import annotations

from collections.abc import Iterator

from tldb import jsonfmt
from tldb.module_api import (
    DEFAULT_MODE,
    DirectoryEntry,
    IndexContribution,
    Module,
    ModuleContext,
    ModuleOutput,
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


class CompileDirectory(Module):
    id = "compile_directory"
    name = "Compile directory"
    subscriptions = ("outputs", "envelopes")
    modes = frozenset({DEFAULT_MODE})
    late = True

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        page = ctx.render(
            "directory.html",
            directory=[(key, _label(key), entries) for key, entries in ctx.directory.items()],
        )
        return ModuleOutput(
            files=[("compile_directory.json", directory_json(ctx.directory))],
            index_html=[IndexContribution("directory", page)],
        )


MODULE = CompileDirectory()
