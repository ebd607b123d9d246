"""compile_directory.json and the "Build products" list of index.html.

Runs late, after every other module, so the directory it writes includes entries that other
modules contributed on top of the central numbered plan.
"""

from __future__ import annotations

from tldb import jsonfmt
from tldb.module_api import DEFAULT_MODE, IndexContribution, Module, ModuleContext, ModuleOutput


def _label(key: str) -> str:
    return "(unknown)" if key == "unknown" else key


class CompileDirectory(Module):
    id = "compile_directory"
    name = "Compile directory"
    subscriptions = ("outputs", "envelopes")
    modes = frozenset({DEFAULT_MODE})
    late = True

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        data = {
            key: {
                "artifacts": [
                    {
                        "name": entry.name.rpartition("/")[2],
                        "number": entry.number,
                        "readable_url": entry.readable_url,
                        "suffix": entry.suffix,
                        "url": entry.url,
                    }
                    for entry in entries
                ]
            }
            for key, entries in ctx.directory.items()
        }
        page = ctx.render(
            "directory.html",
            directory=[(key, _label(key), entries) for key, entries in ctx.directory.items()],
        )
        return ModuleOutput(
            files=[("compile_directory.json", jsonfmt.dumps_pretty(data))],
            index_html=[IndexContribution("directory", page)],
        )


MODULE = CompileDirectory()
