"""Commands about whole runs: `tldb check` and `tldb history add|show`, registered by
`tldb.cli`; and the two-run form of `tldb diff` (`tldb diff A B`), which tldb/cli_extra.py's
`diff` command hands over to `diff_two_runs` when it is given two arguments."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
import orjson

from tldb.errors import InputError


def _threshold(min_seconds: float | None, min_ratio: float | None):
    from tldb.rundiff import Threshold

    threshold = Threshold()
    if min_seconds is not None:
        if min_seconds < 0:
            raise InputError("--min-seconds must not be negative")
        threshold.min_seconds = min_seconds
    if min_ratio is not None:
        if min_ratio < 0:
            raise InputError("--min-ratio must not be negative")
        threshold.min_ratio = min_ratio
    return threshold


def diff_two_runs(
    paths: list[Path],
    html_path: Path | None,
    as_json: bool,
    min_seconds: float | None,
    min_ratio: float | None,
) -> bool:
    """`tldb diff A B`: print the run diff (text or JSON), write --html; True if they differ."""
    from tldb.rundiff import compare_runs
    from tldb.rundiff_render import render_text, write_html
    from tldb.runs import opened_run

    threshold = _threshold(min_seconds, min_ratio)
    with opened_run(paths[0]) as run_a, opened_run(paths[1]) as run_b:
        result = compare_runs(run_a, run_b, threshold)
        if as_json:
            click.echo(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(render_text(result), nl=False)
        if html_path:
            written = write_html(result, html_path)
            click.echo(f"wrote {html_path} ({len(written) - 1} per-compile page(s))", err=True)
    return not result.empty()


@click.command("check")
@click.argument("run_path", metavar="RUN", type=click.Path(path_type=Path, readable=False))
@click.option(
    "--limits",
    "limits_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file of limits (keys as the flags, e.g. max-graph-breaks = 0); flags win.",
)
@click.option("--max-graph-breaks", type=click.IntRange(min=0), help="Most graph breaks.")
@click.option("--max-recompiles", type=click.IntRange(min=0), help="Most recompiles of a frame.")
@click.option("--no-failures", is_flag=True, default=None, help="No compile may fail.")
@click.option(
    "--max-compile-seconds", type=click.FloatRange(min=0), help="Most total compile time."
)
@click.option("--max-cache-misses", type=click.IntRange(min=0), help="Most cache misses.")
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, readable=False),
    help="A run this one must not be worse than: no new graph breaks, recompiles, failures "
    "or cache misses.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write JUnit XML.",
)
def check(
    run_path: Path,
    limits_file: Path | None,
    max_graph_breaks: int | None,
    max_recompiles: int | None,
    no_failures: bool | None,
    max_compile_seconds: float | None,
    max_cache_misses: int | None,
    baseline: Path | None,
    junit_path: Path | None,
) -> None:
    """Check RUN (a log, a database or a report folder) against limits, for CI.

    Prints one line per violated limit and exits 1 if any is violated, 0 otherwise. A
    multi-rank run is checked rank by rank. Example limits file:

    \b
        [check]
        max-graph-breaks = 0
        max-recompiles = 2
        no-failures = true
        baseline = "main-run/trace.db"
    """
    from tldb.check import Limits, check_baseline, check_facts, junit_xml, merged, read_limits
    from tldb.rundiff import compare_runs, facts_of
    from tldb.runs import opened_run

    limits = merged(
        read_limits(limits_file) if limits_file else Limits(),
        {
            "max_graph_breaks": max_graph_breaks,
            "max_recompiles": max_recompiles,
            "no_failures": no_failures,
            "max_compile_seconds": max_compile_seconds,
            "max_cache_misses": max_cache_misses,
            "baseline": baseline,
        },
    )
    if not limits.any():
        raise InputError("no limit given (flags such as --max-graph-breaks, or --limits FILE)")
    with contextlib.ExitStack() as stack:
        run = stack.enter_context(opened_run(run_path))
        facts = {rank: facts_of(path)[0] for rank, path in run.databases.items()}
        outcomes = check_facts(limits, facts)
        if limits.baseline is not None:
            base = stack.enter_context(opened_run(limits.baseline))
            outcomes += check_baseline(compare_runs(base, run))
    for outcome in outcomes:
        for violation in outcome.violations:
            click.echo(f"FAIL {outcome.name}: {violation}")
    failed = [o for o in outcomes if not o.passed]
    if junit_path:
        junit_path.write_bytes(junit_xml(str(run_path), outcomes))
    summary = f"{len(outcomes) - len(failed)} of {len(outcomes)} limit(s) hold"
    click.echo(f"tldb check {run_path}: {summary}", err=True)
    if failed:
        sys.exit(1)


@click.group("history")
def history() -> None:
    """Keep a history of runs (summaries only) and chart it."""


@history.command("add")
@click.argument("run_path", metavar="RUN", type=click.Path(path_type=Path, readable=False))
@click.option(
    "--db", "db_path", type=click.Path(path_type=Path), required=True, help="The history file."
)
@click.option("--label", default=None, help="Name shown for the run (default: its file name).")
def history_add(run_path: Path, db_path: Path, label: str | None) -> None:
    """Add RUN's summary to the history (adding the same run again changes nothing)."""
    from tldb.history import add_run, summarize
    from tldb.runs import opened_run

    with opened_run(run_path) as run:
        summary = summarize(run, label)
    run_id, new = add_run(db_path, summary)
    state = "added" if new else "already in the history"
    click.echo(f"run {run_id} ({summary.label}): {state}", err=True)


@history.command("show")
@click.option(
    "--db", "db_path", type=click.Path(path_type=Path), required=True, help="The history file."
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also write OUT/index.html: the runs and their charts (works offline).",
)
def history_show(db_path: Path, out_dir: Path | None) -> None:
    """Print the runs of the history; with -o, write a page with charts over them."""
    from tldb.history import read_runs
    from tldb.history_page import table_lines, write_page

    runs = read_runs(db_path)
    for line in table_lines(runs):
        click.echo(line)
    if out_dir is not None:
        page = write_page(runs, out_dir)
        click.echo(f"wrote {page}", err=True)


def register(group: click.Group) -> None:
    group.add_command(check)
    group.add_command(history)
