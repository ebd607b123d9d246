"""`tldb serve`: Datasette over tldb databases, read-only, with the static reports beside them.

One server shows both halves of the product: the tlparse-style report folder (mounted at
/report/, index.html served for folders) and the databases (tables, views, canned queries,
ad-hoc SQL). Every database is opened immutable, so nothing can write to it, and Datasette
itself only runs SELECT statements. `/-/tldb.json` tells pages of the report that they are
being served, and where their database is: the datasette_links module reads it.
"""

from __future__ import annotations

import copy
import functools
import html
import re
import shutil
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import yaml
from datasette import hookimpl

from tldb import __version__, serve_access
from tldb import db as dbmod
from tldb import serve_workers as workers_mod
from tldb.errors import InputError, TldbError
from tldb.module_api import ReportConfig
from tldb.ondemand import FOLDER, SENT, OnDemandReport, content_type
from tldb.parallel import cpu_count
from tldb.resources import metadata_file
from tldb.serve_cache import (
    MAX_TOTAL_BYTES,
    FolderStore,
    ResponseCache,
    TrackedDatabase,
    make_folder,
)
from tldb.serve_counts import start_priming
from tldb.serve_ranks import LoadedRanks, RankReports
from tldb.serve_swap import SwapWatch
from tldb.serve_tables import TableBuild

#: The database block of datasette_metadata.yml that describes any tldb database.
TEMPLATE_DATABASE = "trace"
#: The block that describes a run history (tldb history add; tldb/history.py).
HISTORY_DATABASE = "history"
#: Settings tuned for analytic queries over views (each can be overridden with --setting).
DEFAULT_SETTINGS = {"sql_time_limit_ms": 5000, "suggest_facets": False}
#: Query shown when the ad-hoc SQL page is opened from the banner or the report.
EXAMPLE_SQL = "select compile_id, status, cache_status, duration_s from compiles"
#: The same for a run history.
HISTORY_SQL = "select id, label, started_at, compile_seconds, graph_breaks from runs"
#: Name of the Datasette plugin made of this module's hooks, and of its metadata config.
PLUGIN_NAME = "tldb_serve"
#: Name of the plugin made of serve_access's hooks (token login off loopback).
ACCESS_PLUGIN = "tldb_serve_access"


def sql_url(database_url: str, sql: str = EXAMPLE_SQL) -> str:
    """The ad-hoc SQL page of a database, with a query filled in (Datasette 0.65: /db?sql=)."""
    return f"{database_url}?sql={quote_plus(sql, safe='*,')}"


@dataclass(frozen=True)
class ServedDatabase:
    """A database as Datasette shows it: /name, and the report page made from it if any."""

    name: str
    path: Path
    report_url: str | None = None
    history: bool = False  # a run history (tldb history add), not a trace database

    @property
    def example_sql(self) -> str:
        return HISTORY_SQL if self.history else EXAMPLE_SQL


@dataclass
class ServePlan:
    """What one `tldb serve` shows: databases, and report folders mounted under URL prefixes."""

    databases: list[ServedDatabase] = field(default_factory=list)
    mounts: dict[str, Path] = field(default_factory=dict)  # "report" -> folder, for /report/
    #: Reports made on request from databases (`tldb serve LOG`, `tldb serve RANKS/`).
    on_demand: dict[str, OnDemandReport | RankReports] = field(default_factory=dict)
    #: The serving tables of loaded logs' databases, built while the server runs.
    builds: list[TableBuild] = field(default_factory=list)

    def _new_mount(self) -> str:
        taken = len(self.mounts) + len(self.on_demand)
        return "report" if not taken else f"report_{taken + 1}"

    def mount_for(self, folder: Path) -> str:
        """The mount name of a report folder, adding it on first use."""
        folder = folder.resolve()
        for name, root in self.mounts.items():
            if root == folder:
                return name
        name = self._new_mount()
        self.mounts[name] = folder
        return name

    def mount_on_demand(self, report: OnDemandReport | RankReports) -> str:
        name = self._new_mount()
        self.on_demand[name] = report
        return name

    def close(self) -> None:
        """Stop the on-demand reports' cache renders and delete their cache folders; stop the
        table builds still running (done next time) and delete their copies."""
        for report in self.on_demand.values():
            report.close()
        for build in self.builds:
            build.close()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "trace"


def _database_name(db_path: Path, root: Path) -> str:
    """rank_0 for ROOT/rank_0/trace.db, trace for ROOT/trace.db, combined for ROOT/combined.db."""
    if db_path.stem != "trace":
        return _slug(db_path.stem)
    relative = db_path.parent.relative_to(root).parts
    return _slug("_".join(relative)) if relative else "trace"


def _check(path: Path) -> None:
    """Refuse files that are not finished tldb databases (or run histories), with tldb's
    one-line reasons."""
    from tldb.history import is_history

    if not is_history(path):
        dbmod.open_readonly(path).conn.close()


def _log_count(path: Path) -> int:
    db = dbmod.open_readonly(path)
    try:
        return db.conn.execute("SELECT count(*) FROM logs").fetchone()[0]
    finally:
        db.conn.close()


def _found_databases(folder: Path) -> list[Path]:
    """Every *.db below folder, shallowest first (a combined database before its ranks),
    skipping hidden files and folders (loads in progress)."""
    found = []
    for path in sorted(folder.rglob("*.db"), key=lambda p: (len(p.parts), p)):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative) or not path.is_file():
            continue
        if dbmod.is_database(path):
            found.append(path)
    return found


def _report_url(plan: ServePlan, mount: str, db_folder: Path) -> str | None:
    if not (db_folder / "index.html").is_file():
        return None
    relative = db_folder.resolve().relative_to(plan.mounts[mount])
    parts = "".join(f"{quote(p)}/" for p in relative.parts)
    return f"/{mount}/{parts}"


def plan_serve(
    paths: list[Path],
    loaded: dict[Path, Path] | None = None,
    config: ReportConfig | None = None,
    loaded_ranks: dict[Path, LoadedRanks] | None = None,
) -> ServePlan:
    """Decide database names and mounts for the paths given on the command line. `loaded`
    maps the logs among them to their databases: those are served with a report made on
    request (with `config`), mounted like a report folder; so is a database file named
    directly that has no report folder around it and holds one log. `loaded_ranks` maps the
    rank folders among the paths to their loaded ranks: served like an --all-ranks-html
    report (landing page, rank_N/), made on request too."""
    from tldb.history import is_history

    plan = ServePlan()
    loaded = loaded or {}
    loaded_ranks = loaded_ranks or {}
    used: set[str] = set()

    def unique(name: str) -> str:
        chosen, n = name, 2
        while chosen in used:
            chosen, n = f"{name}_{n}", n + 1
        used.add(chosen)
        return chosen

    def add(db_path: Path, name: str, mount: str | None) -> None:
        name = unique(name)
        if mount is None and (db_path.parent / "index.html").is_file():
            mount = plan.mount_for(db_path.parent)
        url = _report_url(plan, mount, db_path.parent) if mount else None
        history = is_history(db_path)
        plan.databases.append(ServedDatabase(name, db_path.resolve(), url, history))

    def add_on_demand(db_path: Path, name: str) -> None:
        mount = plan.mount_on_demand(OnDemandReport(db_path, config or ReportConfig()))
        plan.databases.append(ServedDatabase(unique(name), db_path.resolve(), f"/{mount}/"))

    for path in paths:
        if path in loaded:
            add_on_demand(loaded[path], _slug(path.stem))
            build = TableBuild.needed(loaded[path].resolve())
            if build is not None and all(b.db_path != build.db_path for b in plan.builds):
                plan.builds.append(build)
        elif path in loaded_ranks:
            ranks = loaded_ranks[path]
            mount = plan.mount_on_demand(RankReports(ranks, config or ReportConfig()))
            url = f"/{mount}/"
            plan.databases.append(ServedDatabase(unique("ranks"), ranks.combined, url))
            for rank, db_path in sorted(ranks.dbs.items()):
                name = unique(f"rank_{rank}")
                plan.databases.append(ServedDatabase(name, db_path, f"{url}rank_{rank}/"))
        elif path.is_dir():
            found = _found_databases(path)
            if not found:
                raise InputError(f"no tldb database (*.db) found under {path}")
            mount = plan.mount_for(path)
            for db_path in found:
                try:
                    _check(db_path)
                except TldbError as exc:
                    print(f"Skipping {db_path}: {exc}", file=sys.stderr)
                    continue
                add(db_path, _database_name(db_path, path), mount)
        elif path.is_file():
            _check(path)
            if is_history(path) or (path.parent / "index.html").is_file() or _log_count(path) != 1:
                add(path, _slug(path.stem), None)
            else:
                add_on_demand(path, _slug(path.stem))
        else:
            raise InputError(f"{path} is not a file or folder")
    if not plan.databases:
        raise InputError("no finished tldb database to serve")
    return plan


def _queries(database: dict) -> list[dict]:
    return [
        {"name": name, "title": query.get("title", name), "params": query.get("params", [])}
        for name, query in database.get("queries", {}).items()
    ]


@functools.lru_cache(maxsize=4)
def _parsed_metadata(source: Path) -> dict:
    """The parsed YAML file. The pure-Python parser takes ~0.6 s on the shipped file, which
    came between a log's load and its first page: libyaml's parser when PyYAML has it, and
    parsed once per process (`tldb serve LOG` parses it while the load runs: warm_metadata)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with source.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)  # a safe loader either way


def warm_metadata() -> None:
    """Parse the shipped metadata now (see _parsed_metadata)."""
    _parsed_metadata(metadata_file())


def build_metadata(plan: ServePlan, source: Path | None = None) -> dict:
    """datasette_metadata.yml with its `trace` block applied to every served database (its
    `history` block to run histories)."""
    shipped = copy.deepcopy(_parsed_metadata(source or metadata_file()))
    blocks = shipped.get("databases", {})
    metadata = {key: value for key, value in shipped.items() if key != "databases"}
    links = []
    databases = {}
    for served in plan.databases:
        kind = HISTORY_DATABASE if served.history else TEMPLATE_DATABASE
        block = copy.deepcopy(blocks.get(kind, {}))
        text = html.escape(block.pop("description", ""))
        if served.report_url:
            href = html.escape(served.report_url)
            text += f' <a href="{href}">Static report made from this database</a>.'
            links.append(f'<a href="{href}">{html.escape(served.name)}</a>')
        block["description_html"] = text
        databases[served.name] = block
    metadata["databases"] = databases
    if links:
        metadata["description_html"] = (
            metadata.get("description_html", "") + f"<p>Static reports: {', '.join(links)}.</p>"
        )
    return metadata


def marker(plan: ServePlan, metadata: dict) -> dict:
    """The body of /-/tldb.json: which report pages belong to which database."""
    reports: dict[str, list[str]] = {}
    for served in plan.databases:
        if served.report_url:
            reports.setdefault(served.report_url, []).append(served.name)
    return {
        "tldb": __version__,
        "reports": [{"url": url, "databases": names} for url, names in reports.items()],
        "databases": {
            served.name: {
                "url": f"/{quote(served.name)}",
                "sql": sql_url(f"/{quote(served.name)}", served.example_sql),
                "report": served.report_url,
                "queries": _queries(metadata["databases"][served.name]),
            }
            for served in plan.databases
        },
    }


def parse_settings(pairs) -> dict:
    """--setting NAME VALUE pairs, typed like Datasette's defaults (on/off for flags)."""
    from datasette.app import DEFAULT_SETTINGS as DATASETTE_DEFAULTS

    settings: dict = {}
    for name, text in pairs:
        if name not in DATASETTE_DEFAULTS:
            raise InputError(f"unknown Datasette setting {name!r}")
        default = DATASETTE_DEFAULTS[name]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("on", "off", "true", "false", "1", "0"):
                    raise ValueError(text)
                settings[name] = text.lower() in ("on", "true", "1")
            else:
                settings[name] = type(default)(text)
        except ValueError:
            raise InputError(f"bad value {text!r} for Datasette setting {name}") from None
    return settings


def make_datasette(
    plan: ServePlan,
    settings: dict | None = None,
    metadata: dict | None = None,
    token: str | None = None,
):
    """A Datasette instance over the plan: immutable databases, report mounts, the marker;
    with a token, readable only by its holder (serve_access)."""
    from datasette.app import Datasette

    _register_plugin()
    metadata = metadata or build_metadata(plan)
    if token:
        serve_access.protect(metadata)
    metadata.setdefault("plugins", {})[PLUGIN_NAME] = {
        "mounts": {name: str(folder) for name, folder in plan.mounts.items()},
        "on_demand": list(plan.on_demand),
        "marker": marker(plan, metadata),
    }
    ds = Datasette(
        [], metadata=metadata, settings={**DEFAULT_SETTINGS, **(settings or {})}, cors=False
    )
    setattr(ds, serve_access.TOKEN_ATTRIBUTE, token)
    if "_memory" in ds.databases:  # added by Datasette when created without files
        ds.remove_database("_memory")
    for served in plan.databases:
        database = TrackedDatabase(ds, path=str(served.path), is_mutable=False)
        ds.add_database(database, name=served.name)
    setattr(ds, ON_DEMAND_ATTRIBUTE, dict(plan.on_demand))
    return ds


def _register_plugin() -> None:
    """Register this module's Datasette hooks once per process (they act only when configured)."""
    from datasette.plugins import pm

    if pm.get_plugin(PLUGIN_NAME) is None:
        pm.register(sys.modules[__name__], name=PLUGIN_NAME)
    if pm.get_plugin(ACCESS_PLUGIN) is None:
        pm.register(serve_access, name=ACCESS_PLUGIN)


@hookimpl
def prepare_connection(conn):
    """Every connection Datasette opens gets tldb's per-query limits (serve_guard)."""
    from tldb.serve_guard import guard_connection

    guard_connection(conn)


@hookimpl
def register_routes(datasette):
    """/-/tldb.json, and each report folder at /report/ with index.html for folders."""
    config = datasette.plugin_config(PLUGIN_NAME)
    if not config:
        return []
    routes = [(r"^/-/tldb\.json$", _marker_view)]
    if config["mounts"] or config.get("on_demand"):
        names = "|".join(re.escape(name) for name in [*config["mounts"], *config["on_demand"]])
        routes.append((rf"^/(?P<mount>{names})(?P<path>/.*)?$", _report_view))
    return routes


async def _marker_view(datasette, request):
    from datasette.utils.asgi import Response

    if not await serve_access.allowed(datasette, request):
        return Response.text("403: forbidden", status=403)
    return Response.json(datasette.plugin_config(PLUGIN_NAME)["marker"])


def _content_type(path: Path) -> str:
    return content_type(path.name)


async def _report_view(datasette, request, send):
    """A file of a mounted report; a folder answers with its index.html, never a listing."""
    from datasette.utils.asgi import Response, asgi_send_file

    if not await serve_access.allowed(datasette, request):
        return Response.text("403: forbidden", status=403)
    mount = request.url_vars["mount"]
    relative = unquote(request.url_vars.get("path") or "")
    if not relative:
        return Response.redirect(f"/{mount}/")
    on_demand = getattr(datasette, ON_DEMAND_ATTRIBUTE, {})
    if mount in on_demand:
        return await _on_demand_view(on_demand[mount], mount, relative, send)
    root = Path(datasette.plugin_config(PLUGIN_NAME)["mounts"][mount])
    target = (root / relative.lstrip("/")).resolve()
    if not target.is_relative_to(root):
        return Response.text("404: not inside the report folder", status=404)
    if target.is_dir():
        if not relative.endswith("/"):
            return Response.redirect(f"/{mount}{quote(relative)}/")
        target = target / "index.html"
    if not target.is_file():
        return Response.text("404: not found in the report folder", status=404)
    await asgi_send_file(send, target, content_type=_content_type(target), chunk_size=1 << 16)
    return None


#: Attribute of a Datasette instance holding its on-demand reports by mount name (objects,
#: which its metadata cannot hold; one process may run several instances, as tests do).
ON_DEMAND_ATTRIBUTE = "tldb_on_demand"


async def _on_demand_view(report: OnDemandReport | RankReports, mount: str, relative: str, send):
    """A file of a report made on request (see OnDemandReport.locate); folders answer as in
    a mounted folder: a redirect to the slash, then their index.html."""
    from datasette.utils.asgi import Response, asgi_send_file

    wanted = relative.lstrip("/")
    if wanted == "" or wanted.endswith("/"):
        wanted += "index.html"
    try:
        found = await report.locate(wanted, send)
    except TldbError as exc:
        return Response.text(f"500: {exc}", status=500)
    if found == SENT:
        return None
    if found == FOLDER:
        return Response.redirect(f"/{mount}{quote(relative)}/")
    if not isinstance(found, Path):
        return Response.text("404: not found in the report", status=404)
    await asgi_send_file(send, found, content_type=_content_type(found), chunk_size=1 << 16)
    return None


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that worker processes can join (serve_workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return workers_mod.listen_shared(family, (host, port))
    except OSError as exc:
        hint = " (pass --port 0 for any free port)" if port else ""
        raise TldbError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None


#: Ports `tldb report --serve` tries in turn when no --port is given (tlparse's range).
REPORT_PORTS = range(8000, 8100)


def bind_first_free(host: str, ports: range = REPORT_PORTS) -> socket.socket:
    """A listening socket on the first port of `ports` that binds. The socket is kept and
    served on, so no other process can take the port between the probe and the server."""
    for port in ports:
        try:
            return _bind(host, port)
        except TldbError:
            continue
    raise TldbError(f"No available ports in range {ports[0]}-{ports[-1]} on {host}")


def _process_lines(count: int, cache: FolderStore | None) -> list[str]:
    if cache is None:
        return [f"  {count} server process(es), no page cache"]
    mib = cache.max_bytes >> 20
    return [f"  {count} server process(es); pages cached in {cache.folder} (<= {mib} MiB each)"]


def banner(plan: ServePlan, base: str, extra: list[str] | None = None) -> str:
    """The lines printed at start: where the reports, databases and SQL pages are."""
    lines = [f"tldb serve: Datasette {base}/ (read-only)"]
    for name in plan.mounts:
        lines.append(f"  report    {base}/{name}/")
    for name, report in plan.on_demand.items():
        cached = ", ".join(map(str, report.cache_dirs))
        lines.append(f"  report    {base}/{name}/  (made on request; cached pages in {cached})")
    for served in plan.databases:
        db_url = f"{base}/{quote(served.name)}"
        lines.append(f"  database  {db_url}  ({served.path})")
        if served.report_url:
            lines.append(f"    its report  {base}{served.report_url}")
        lines.append(f"    SQL         {sql_url(db_url, served.example_sql)}")
    lines.extend(extra or [])
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def run(
    plan: ServePlan,
    host: str,
    port: int,
    settings: dict,
    open_browser: bool,
    sock: socket.socket | None = None,
    public: bool = False,
    workers: int | None = None,
    cache_mb: int = MAX_TOTAL_BYTES >> 20,
) -> None:
    """Serve until Ctrl-C (or SIGTERM); a clean stop returns normally. `sock`: a socket
    already listening on `host` (bind_first_free), else `port` is bound here. Off loopback,
    warn, and require a generated token unless `public`. `workers`: processes answering on the
    socket (serve_workers; default one per core, one with reports made on request);
    `cache_mb`: each one's page cache (serve_cache; 0: none)."""
    exposed = not serve_access.is_loopback(host)
    token = serve_access.new_token() if exposed and not public else None
    ds = make_datasette(plan, settings, token=token)
    if plan.on_demand and workers not in (None, 1):
        plan.close()
        raise InputError("--workers: a report made on request is served by one process")
    count = workers or workers_mod.default_workers(cpu_count(), bool(plan.on_demand))
    count = count if workers_mod.can_fork() else 1
    try:
        sock = sock or _bind(host, port)
    except TldbError:
        plan.close()
        raise
    # Cache renders start now, in the background (forked before the server makes threads):
    # most likely ready when first asked for. Several reports share the cores.
    jobs = max(1, cpu_count() // max(1, len(plan.on_demand)))
    for report in plan.on_demand.values():
        report.start(jobs)
    for build in plan.builds:  # after the renders: the first pages come first
        build.start()
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{sock.getsockname()[1]}"
    if exposed:
        print(serve_access.exposure_warning(host), file=sys.stderr, flush=True)
    if token:
        print(f"Access token: {token}", flush=True)
        print(f"  browser: {base}{serve_access.LOGIN_PATH}?token={token}", flush=True)
        print(f"  scripts: Authorization: Bearer {token}", flush=True)
    elif exposed:
        print(
            "Warning: --public: no token; anyone who reaches the port reads everything.",
            file=sys.stderr,
            flush=True,
        )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM once its own handlers are installed, then
    # raises the signal again: SIGINT ends up here as KeyboardInterrupt, SIGTERM in
    # _request_stop, as does a SIGTERM that comes before uvicorn's handlers (_serve_on).
    # (Installed before the banner: whoever waits for it may stop the server at once.)
    previous = signal.signal(signal.SIGTERM, _request_stop)
    cache = FolderStore(make_folder(), cache_mb << 20) if cache_mb else None
    print(banner(plan, base, _process_lines(count, cache)), flush=True)
    if open_browser:
        import webbrowser

        first = next(iter([*plan.mounts, *plan.on_demand]), None)
        webbrowser.open(f"{base}/{first}/" if first else f"{base}/")
    pids = workers_mod.fork_workers(
        count - 1, lambda: _serve_on(ds, plan, workers_mod.own_socket(sock), cache)
    )
    try:
        _serve_on(ds, plan, sock, cache)
    except KeyboardInterrupt:
        pass
    finally:
        workers_mod.stop_workers(pids)
        signal.signal(signal.SIGTERM, previous)
        sock.close()
        plan.close()
        if cache is not None:
            shutil.rmtree(cache.folder, ignore_errors=True)
    print("Stopped.", flush=True)


def serving_app(ds, plan: ServePlan, cache: FolderStore | None):
    """The ASGI app one server process runs: Datasette, behind the page cache if any, behind
    the move to files whose serving tables are built (serve_swap) while any is being built."""
    app = ds.app()
    responses = None
    if cache is not None:
        app = responses = ResponseCache(app, cache, [*plan.mounts, *plan.on_demand])
    if plan.builds:
        app = SwapWatch(app, ds, plan.builds, responses, list(plan.on_demand.values()))
    return app


def _serve_on(ds, plan: ServePlan, sock: socket.socket, cache: FolderStore | None) -> None:
    """One server process: Datasette behind the page cache, counts primed in the background,
    uvicorn answering on the socket until stopped. Threads start here, after any fork."""
    import uvicorn

    app = serving_app(ds, plan, cache)
    start_priming(ds)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    _STOP["server"] = server
    if _STOP["requested"]:  # SIGTERM came while this process was starting
        server.should_exit = True
    server.run(sockets=[sock])


#: This process's uvicorn server once made, and whether SIGTERM asked it to stop.
_STOP: dict = {"server": None, "requested": False}


def _request_stop(signum, frame) -> None:
    """SIGTERM before uvicorn's own handler is installed (or after it is removed): ask the
    server to stop as uvicorn's handler would. Raising KeyboardInterrupt here instead, at
    whatever point the main thread was (forking workers, making the app, starting the event
    loop), sometimes left a server that ignored SIGTERM for good (seen in tests under load)."""
    _STOP["requested"] = True
    if _STOP["server"] is not None:
        _STOP["server"].should_exit = True
