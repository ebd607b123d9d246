"""The `tldb` command line. Commands only parse options and call the library."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import click

from tldb import __version__
from tldb.diskfull import full_disk_message
from tldb.errors import InputError, TldbError
from tldb.module_api import ReportConfig
from tldb.rankfiles import parse_rank_list


class _Group(click.Group):
    """Turn tldb errors into one line on stderr and exit status 1, never a traceback.

    Log arguments are `click.Path(readable=False)`: a log that cannot be read is such an
    error (`Error: cannot read LOG: Permission denied`), not a usage message with status 2.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TldbError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted", err=True)
            sys.exit(130)
        except (OSError, sqlite3.Error) as exc:
            message = full_disk_message(exc)
            if message is None:
                raise
            click.echo(f"Error: {message}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="tldb")
def cli() -> None:
    """tldb: torch.compile TORCH_TRACE logs into SQLite, a report, and Datasette.

    \b
    tldb report LOG -o DIR     the tlparse report, plus DIR/trace.db
    tldb load LOG --db FILE    only build the database
    """


#: `--serving-tables` of `tldb report` and `tldb load` (loader.build_database says why).
SERVING_TABLES = click.option(
    "--serving-tables",
    is_flag=True,
    help="Hold the slow views (compiles, metrics, guards, chromium_spans, ...) as tables in the "
    "database: for a database `tldb serve` will show to many users (about 40% more load time "
    "and a database 2.5x larger on a 400 MB log).",
)

#: File names `tldb serve` takes as databases even when their content is not SQLite.
DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _latest_file(folder: Path) -> Path:
    files = [p for p in folder.iterdir() if p.is_file()]
    if not files:
        raise InputError(f"No files found in directory {folder}")
    return max(files, key=lambda p: p.stat().st_mtime)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path, readable=False))  # see _Group
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("tl_out"),
    show_default=True,
    help="Output folder for the report.",
)
@click.option("--overwrite", is_flag=True, help="Replace the output folder if it exists.")
@click.option("--no-browser", is_flag=True, help="Do not open index.html when done.")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 if any line failed to parse (the report is still written).",
)
@click.option(
    "--strict-compile-id", is_flag=True, help="Exit 1 if some envelope had a malformed compile id."
)
@click.option(
    "-p",
    "--plain-text",
    is_flag=True,
    help="Write inductor output code as plain .txt instead of highlighted HTML.",
)
@click.option(
    "-e", "--export", "export_mode", is_flag=True, help="Draft-export report (torch.export logs)."
)
@click.option(
    "-i",
    "--inductor-provenance",
    is_flag=True,
    help="Write provenance_tracking pages linking graph nodes and kernels.",
)
@click.option(
    "--all-ranks-html",
    is_flag=True,
    help="PATH is a folder of rank logs: one report per rank and a landing page.",
)
@click.option("--latest", is_flag=True, help="PATH is a folder: report its newest file.")
@click.option("--custom-header-html", default="", help="Raw HTML put at the top of index.html.")
@click.option("-v", "--verbose", is_flag=True, help="Print each unknown field occurrence.")
@click.option(
    "--modules",
    "module_ids",
    default=None,
    help="Comma-separated module ids to run (default: all of the mode).",
)
@click.option(
    "--module-path",
    "module_paths",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of extra modules (one sub-folder each); repeatable.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the database (default: OUT/trace.db).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes working at once (rendering; loading ranks). [default: one per core]",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="With --all-ranks-html: run the rank steps on this Dask scheduler (tcp://host:8786; "
    "needs tldb[dask]). Logs and OUT must be on a file system every worker sees.",
)
@click.option(
    "--only-ranks",
    metavar="RANKS",
    default=None,
    help="With --all-ranks-html: load and render only these ranks (e.g. 0-63,70) into "
    "OUT/rank_N and stop, for one task of a batch array; a last run without it reuses them "
    "and writes the landing page.",
)
@SERVING_TABLES
def report(
    path: Path,
    out_dir: Path,
    overwrite: bool,
    no_browser: bool,
    strict: bool,
    strict_compile_id: bool,
    plain_text: bool,
    export_mode: bool,
    inductor_provenance: bool,
    all_ranks_html: bool,
    latest: bool,
    custom_header_html: str,
    verbose: bool,
    module_ids: str | None,
    module_paths: tuple[Path, ...],
    db_path: Path | None,
    jobs: int | None,
    scheduler: str | None,
    only_ranks: str | None,
    serving_tables: bool,
) -> None:
    """Write the tlparse-compatible report of PATH (a log, or a tldb database) to OUT.

    Accepts every tlparse 0.4.3 flag with the same meaning. The database the report was
    made from is kept as OUT/trace.db; pass it as PATH later to re-render without parsing.

    With --all-ranks-html, rank outputs already in OUT that are complete and up to date (same
    log, same tldb, same options) are reused, so an interrupted run picks up where it stopped.
    """
    from tldb.report import ReportRequest, run_report

    if all_ranks_html and latest:
        raise TldbError("--latest cannot be used with --all-ranks-html")
    if latest:
        if not path.is_dir():
            raise InputError(f"Input path {path} is not a directory (required with --latest)")
        path = _latest_file(path)
    request = ReportRequest(
        source=path,
        out_dir=out_dir,
        config=ReportConfig(
            plain_text=plain_text,
            custom_header_html=custom_header_html,
            export_mode=export_mode,
            inductor_provenance=inductor_provenance,
            verbose=verbose,
        ),
        overwrite=overwrite,
        strict=strict,
        strict_compile_id=strict_compile_id,
        modules=[m.strip() for m in module_ids.split(",") if m.strip()] if module_ids else None,
        module_paths=list(module_paths),
        db_path=db_path,
        serving_tables=serving_tables,
    )
    if jobs is not None:
        request.jobs = jobs
    if (scheduler or only_ranks) and not all_ranks_html:
        raise TldbError("--scheduler and --only-ranks go with --all-ranks-html")
    request.scheduler = scheduler
    if only_ranks is not None:
        request.only_ranks = parse_rank_list(only_ranks)
    if all_ranks_html:
        from tldb.multirank import run_multi_rank

        run_multi_rank(request)
    else:
        run_report(request)
    index = out_dir / "index.html"
    if not no_browser and index.exists() and sys.stdout.isatty() and os.environ.get("DISPLAY"):
        click.launch(str(index))


@cli.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(path_type=Path, readable=False))
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Database file to (re)build.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print each unknown field occurrence.")
@SERVING_TABLES
def load(logs: tuple[Path, ...], db_path: Path, verbose: bool, serving_tables: bool) -> None:
    """Parse LOGS into a new SQLite database at --db (replacing it, atomically).

    Prints tlparse's statistics line per log. Loading the same logs again gives the same
    database.
    """
    from tldb import db as dbmod
    from tldb.report import load_with_progress, print_load_summary

    for log in logs:
        if not log.is_file():
            raise InputError(f"{log} is not a file")
    load_with_progress(list(logs), db_path, serving_tables)
    db = dbmod.open_readonly(db_path)
    try:
        for (log_id,) in db.conn.execute("SELECT id FROM logs ORDER BY id").fetchall():
            if len(logs) > 1:
                name = db.conn.execute("SELECT path FROM logs WHERE id = ?", [log_id]).fetchone()[0]
                click.echo(f"{name}:", err=True)
            print_load_summary(db, log_id, verbose)
    finally:
        db.conn.close()


@cli.command()
@click.argument("rank_dbs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "target",
    type=click.Path(path_type=Path),
    required=True,
    help="The combined database to (re)build.",
)
def combine(rank_dbs: tuple[Path, ...], target: Path) -> None:
    """Merge per-rank databases into one, with a `rank` column in every table.

    Each database's rank is its log's (dedicated_log_torch_trace_rank_N), else that of its
    rank_N folder, else the rank its envelopes carry. Ids are renumbered so they never collide.
    """
    from tldb.combine import combine as combine_dbs
    from tldb.combine import rank_of

    result = combine_dbs([(rank_of(p), p) for p in rank_dbs], target)
    ranks = ", ".join(map(str, result.ranks))
    click.echo(f"{target}: rank(s) {ranks}, {result.rows.get('envelopes', 0)} envelopes", err=True)


@cli.command()
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    metavar="PATH...",
    type=click.Path(exists=True, path_type=Path),
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "-p",
    "--port",
    default=8001,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--setting",
    "settings",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A Datasette setting, e.g. --setting sql_time_limit_ms 20000; repeatable.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the report in a browser.")
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    default=None,
    help="With one LOG: where its database goes (default: a folder of ~/.cache/tldb/serve).",
)
@click.option("--plain-text", is_flag=True, help="LOG's report as with tldb report -p.")
@click.option("--export", "export_mode", is_flag=True, help="LOG's report as with tldb report -e.")
@click.option("--inductor-provenance", is_flag=True, help="LOG's report as with tldb report -i.")
@click.option("--custom-header-html", default="", help="LOG's report: HTML atop index.html.")
@click.option("-v", "--verbose", is_flag=True, help="Print each unknown field occurrence.")
@click.option(
    "--public",
    is_flag=True,
    help="Off loopback, serve without the access token tldb otherwise generates and prints.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Server processes sharing the port [default: one per core up to 4; 1 for a report "
    "made on request].",
)
@click.option(
    "--cache-mb",
    type=click.IntRange(0, 1 << 16),
    default=64,
    show_default=True,
    help="MiB of rendered pages each process keeps (in a temporary folder the processes "
    "share; the databases are immutable); 0: no page cache.",
)
def serve(
    paths: tuple[Path, ...],
    host: str,
    port: int,
    settings: tuple,
    open_browser: bool,
    db_path: Path | None,
    plain_text: bool,
    export_mode: bool,
    inductor_provenance: bool,
    custom_header_html: str,
    verbose: bool,
    public: bool,
    workers: int | None,
    cache_mb: int,
) -> None:
    """Browse tldb databases and their reports in Datasette, read-only.

    \b
    PATH is a report folder (tldb report -o DIR: serves DIR/trace.db and
    mounts DIR at /report/), a folder of several reports (every *.db below
    it, named after its folder: OUT/rank_0/trace.db is /rank_0), a
    database file (its report folder mounted; without one, its report is
    made on request as for a log), or a log: it is loaded into a database
    (--db, or the cache folder, reused while the log is unchanged) and its
    report is made page by page when asked for, at /report/, writing
    nothing else; or a folder of rank logs, served likewise as
    --all-ranks-html writes it (landing page, rank_N/).
    Every database is opened immutable: nothing can change it.

    \b
    Ad-hoc SQL: open a database page (http://127.0.0.1:8001/trace) and type
    a SELECT into its SQL box, or go straight to
      http://127.0.0.1:8001/trace?sql=select+*+from+compiles
    Canned queries (graph breaks, recompiles, slowest compiles, cache hit
    rate...) are listed on the database page; views such as compiles,
    metrics, graph_breaks and chromium_spans are listed with the tables.
    The report's index page links there when served. Ctrl-C stops.

    \b
    On an address other than loopback (--host 0.0.0.0), tldb warns that
    the data holds model code and prints a secret token that every
    request needs (a browser logs in once at the printed URL), unless
    --public.
    """
    from tldb import db as dbmod
    from tldb.serve_logs import load_logs
    from tldb.serve_ranks import is_rank_folder, load_rank_folder

    # A file is served as a log unless it is a database: SQLite content, or a name that says
    # database (a damaged or foreign .db is then refused in one line, not loaded as a log).
    logs = [
        p
        for p in paths
        if p.is_file() and not dbmod.is_database(p) and p.suffix.lower() not in DATABASE_SUFFIXES
    ]
    if db_path is not None and not logs:
        raise InputError("--db goes with a LOG to load")
    config = ReportConfig(
        plain_text=plain_text,
        custom_header_html=custom_header_html,
        export_mode=export_mode,
        inductor_provenance=inductor_provenance,
    )
    loaded = load_logs(logs, db_path, verbose)
    ranks = {p: load_rank_folder(p, config, verbose) for p in paths if is_rank_folder(p)}
    from tldb.serve import parse_settings, plan_serve, run

    plan = plan_serve(list(paths), loaded, config, ranks)
    run(
        plan, host, port, parse_settings(settings), open_browser, public=public,
        workers=workers, cache_mb=cache_mb,
    )  # fmt: skip


from tldb.cli_extra import register as _register_extra  # noqa: E402

_register_extra(cli)
from tldb.cli_run import register as _register_run  # noqa: E402
from tldb.cli_runs import register as _register_runs  # noqa: E402

_register_runs(cli)
_register_run(cli)
