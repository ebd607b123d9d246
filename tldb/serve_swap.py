"""A running server moving to the file that replaced a database it serves (serve_tables).

The server serves its databases immutable: Datasette's connections, the page cache
(serve_cache) and the row counts (serve_counts) all assume a file never changes. A build of
serving tables therefore never changes the served file; it renames a new one into its place.
Connections opened before go on reading the old file (same rows, from the views) until the
server moves, all at once and between two requests, to the new one:

- a new Datasette Database object takes the name (its hash, size and table counts are those of
  the new file), and each SQL thread reopens its connection at its next query (TrackedDatabase);
- the counts of the old file are dropped and the new file is counted again, in the background;
- the page cache starts a new generation of keys: a table's page is not its view's page (a
  table has rowids), and a page kept from before must not answer after;
- the report made on request drops its idle connections, so its next pages read the tables.

Datasette's own catalogue of tables and columns (its `_internal` database) follows by itself:
it is refreshed on each request whose database's `PRAGMA schema_version` changed, and the new
file's is higher (each view replaced by a table counts).
"""

from __future__ import annotations

from pathlib import Path

from tldb import serve_counts
from tldb.serve_cache import ResponseCache, TrackedDatabase
from tldb.serve_tables import TableBuild


def switch(datasette, path: Path) -> list[str]:
    """Serve the file now at `path` instead of the one each database of that path was opened
    on; the names of the databases moved."""
    moved = []
    with serve_counts.LOCK:
        databases = dict(datasette.databases)
        for name, old in databases.items():
            if old.is_memory or not old.path or Path(old.path) != path:
                continue
            new = TrackedDatabase(datasette, path=old.path, is_mutable=old.is_mutable)
            new.name, new.route = old.name, old.route
            databases[name] = new
            serve_counts.forget(datasette, name)
            moved.append(name)
        datasette.databases = databases  # one assignment, as Datasette's add_database does
    if moved:
        serve_counts.start_priming(datasette, moved)
    return moved


class SwapWatch:
    """ASGI middleware: before each request, move to every database whose serving tables are
    in place (TableBuild.ready: a poll of a pipe while a build runs; nothing once all are)."""

    def __init__(
        self,
        app,
        datasette,
        builds: list[TableBuild],
        cache: ResponseCache | None = None,
        reports: list | None = None,
    ) -> None:
        self.app = app
        self.datasette = datasette
        self.pending = list(builds)
        self.cache = cache
        self.reports = list(reports or [])

    def check(self) -> None:
        for build in [b for b in self.pending if b.ready()]:
            self.pending.remove(build)
            switch(self.datasette, build.db_path)
            if self.cache is not None:
                self.cache.forget_all()
            for report in self.reports:
                if getattr(report, "db_path", None) == build.db_path:
                    report.refresh()

    async def __call__(self, scope, receive, send) -> None:
        if self.pending and scope["type"] == "http":
            self.check()
        await self.app(scope, receive, send)
