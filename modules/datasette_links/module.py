"""Links from the report's index page into Datasette, shown only under `tldb serve`.

Opened as plain files (or from any other web server) the section is an empty, hidden block:
the report reads exactly as tlparse's. Under `tldb serve`, a small script finds the server's
`/-/tldb.json`, learns which database this report was made from, and lists links to its tables,
the ad-hoc SQL page and the canned queries. Nothing in the page depends on a database name
or a URL known when the report was written.
"""

from __future__ import annotations

from tldb.module_api import DEFAULT_MODE, IndexContribution, Module, ModuleContext, ModuleOutput


class DatasetteLinks(Module):
    id = "datasette_links"
    name = "Links into Datasette (under tldb serve)"
    subscriptions = ()
    modes = frozenset({DEFAULT_MODE})

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        return ModuleOutput(index_html=[IndexContribution("datasette", ctx.render("section.html"))])


MODULE = DatasetteLinks()
