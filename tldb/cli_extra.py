"""`tldb diff` and `tldb search`: commands beyond tlparse, registered by `tldb.cli`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tldb import db as dbmod
from tldb.errors import InputError


def _is_database(path: str) -> bool:
    candidate = Path(path)
    return candidate.is_file() and dbmod.is_database(candidate)


@click.command("diff")
@click.argument("args", nargs=-1, required=True, metavar="A B | DB ID_A ID_B | DB_A DB_B ID [ID_B]")
@click.option(
    "--html", "html_path", type=click.Path(path_type=Path), help="Also write an HTML page."
)
@click.option("--json", "as_json", is_flag=True, help="Two runs: print the diff as JSON.")
@click.option(
    "--min-seconds",
    type=float,
    default=None,
    help="Two runs: smallest compile time change reported, in seconds. [default: 0.5]",
)
@click.option(
    "--min-ratio",
    type=float,
    default=None,
    help="Two runs: smallest compile time change reported, relative. [default: 0.1]",
)
@click.option("--log-a", type=int, default=None, help="Log id in the (first) database, if several.")
@click.option("--log-b", type=int, default=None, help="Log id in the second database, if several.")
@click.option("-U", "--context", default=3, show_default=True, help="Lines of context.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when something differs (like diff).")
def diff(
    args, html_path, as_json, min_seconds, min_ratio, log_a, log_b, context, exit_code
) -> None:
    """Show what changed between two runs, or between two compiles.

    \b
    tldb diff A B               two whole runs (each a log, a database or a
                                report folder; two multi-rank folders: per
                                rank, plus the ranks that changed)
    tldb diff DB ID_A ID_B      two compile ids of one database (0/0 0/1, or [0/0] [0/1])
    tldb diff DB_A DB_B ID      one compile id in two databases (two runs, two ranks)
    tldb diff DB_A DB_B ID_A ID_B   a compile of one database with one of another

    The form is chosen by the number of arguments. Two runs: compiles are matched by frame
    (code object name, file, first line) and order within the frame; shown are compiles
    added/removed, graph breaks, recompiles, failures, guards, inputs that became dynamic or
    static, cache outcomes and hit rates, compile time per phase (changes under --min-seconds
    or --min-ratio are noise), and which graphs and output code changed (with the per-compile
    command, or pages linked from --html). Two compiles: guards, graphs (Dynamo's output
    graph, AOTAutograd's graphs, Inductor's post-grad graph), output code and the fields of
    compilation_metrics, as unified diffs.
    """
    if len(args) == 2:
        from tldb.cli_runs import diff_two_runs

        differs = diff_two_runs([Path(a) for a in args], html_path, as_json, min_seconds, min_ratio)
        if exit_code and differs:
            sys.exit(1)
        return
    if as_json or min_seconds is not None or min_ratio is not None:
        raise click.UsageError("--json, --min-seconds and --min-ratio go with two runs (A B)")
    if len(args) not in (3, 4):
        raise click.UsageError(f"tldb diff takes 2, 3 or 4 arguments, not {len(args)}")
    from tldb.diff import Side, compare, normalize_compile_id, pick_log, render_html, render_text

    first, second, third = args[:3]
    if len(args) == 4:
        paths = (Path(first), Path(second))
        ids = (normalize_compile_id(third), normalize_compile_id(args[3]))
    elif _is_database(second):
        paths = (Path(first), Path(second))
        ids = (normalize_compile_id(third), normalize_compile_id(third))
    else:
        paths = (Path(first), Path(first))
        ids = (normalize_compile_id(second), normalize_compile_id(third))
    dbs = [dbmod.open_readonly(p) for p in paths]
    try:
        sides = []
        for db, path, cid, wanted in zip(dbs, paths, ids, (log_a, log_b), strict=True):
            log_id = pick_log(db.conn, path, wanted if wanted is not None else log_a)
            sides.append(Side(db.conn, log_id, cid, str(path)))
        changes = compare(sides[0], sides[1], context)
        click.echo(render_text(sides[0], sides[1], changes), nl=False)
        if html_path:
            html_path.write_text(render_html(sides[0], sides[1], changes), encoding="utf-8")
            click.echo(f"wrote {html_path}", err=True)
    finally:
        for db in dbs:
            db.conn.close()
    if exit_code and any(c.status != "identical" for c in changes):
        sys.exit(1)


@click.command("search")
@click.argument("db_path", metavar="DB", type=click.Path(path_type=Path))
@click.argument("term", required=False)
@click.option("-n", "--limit", default=50, show_default=True, help="Most matches to print.")
@click.option("--raw", is_flag=True, help="TERM is an FTS5 query (AND, OR, NEAR, prefix*).")
@click.option("--build", is_flag=True, help="(Re)build the search index, then search if TERM.")
def search(db_path: Path, term: str | None, limit: int, raw: bool, build: bool) -> None:
    """Full-text search of graphs, output code, guards and stack frames of DB.

    TERM is matched as a phrase of words (aten.mm finds `aten.mm.default`; case does not
    matter). Prints one line per match: compile id, envelope kind, name and a snippet with
    the match in [brackets]. The index is built into DB on the first search (a one-time
    cost; `--build` does it ahead of time, e.g. before `tldb serve`).
    """
    from tldb import search as searchmod

    if not term and not build:
        raise InputError("give a TERM to search for, or --build")
    db = dbmod.open_readonly(db_path)
    try:
        missing = not searchmod.has_index(db.conn)
    finally:
        db.conn.close()
    if build or missing:
        seconds = searchmod.build_index(db_path)
        click.echo(f"search index built in {seconds:.2f} s", err=True)
    if not term:
        return
    db = dbmod.open_readonly(db_path)
    try:
        hits = searchmod.search(db.conn, term, limit, raw)
        logs = db.conn.execute("SELECT count(*) FROM logs").fetchone()[0]
    finally:
        db.conn.close()
    for hit in hits:
        where = f"log {hit.log_id} " if logs > 1 else ""
        snippet = " ⏎ ".join(part.strip() for part in hit.snippet.splitlines() if part.strip())
        click.echo(f"{where}{hit.compile_id or '-'}\t{hit.kind}\t{hit.name}\t{snippet}")
    click.echo(f"{len(hits)} match(es)", err=True)


def register(group: click.Group) -> None:
    group.add_command(diff)
    group.add_command(search)
