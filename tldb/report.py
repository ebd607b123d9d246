"""`tldb report`: from a log (or an existing database) to the report folder."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from tldb import db as dbmod
from tldb import staging
from tldb.directory import build_manifest, compile_keys, plan_directory
from tldb.errors import InputError, StrictError, TldbError
from tldb.folder_hint import folder_hint
from tldb.loader import build_database
from tldb.logfile import text_size
from tldb.module_api import (
    SECTION_ORDER,
    IndexContribution,
    IndexPage,
    ModuleContext,
    ReportConfig,
)
from tldb.outlock import lock_folder, unlock
from tldb.parallel import cpu_count
from tldb.progress import byte_progress, count_progress
from tldb.registry import ModuleRegistry
from tldb.resources import templates_dir
from tldb.site import Site, prepare_output
from tldb.stats import Stats

DB_NAME = "trace.db"


@dataclass
class ReportRequest:
    source: Path
    out_dir: Path
    config: ReportConfig = field(default_factory=ReportConfig)
    overwrite: bool = False
    strict: bool = False
    strict_compile_id: bool = False
    modules: list[str] | None = None
    module_paths: list[Path] = field(default_factory=list)
    db_path: Path | None = None
    #: Processes rendering at once (and loading, for several ranks); default: one per core.
    jobs: int = field(default_factory=cpu_count)
    #: Multi-rank only: a Dask scheduler address to run the rank steps on (default: locally).
    scheduler: str | None = None
    #: Multi-rank only: run just these ranks' steps (load and render), no landing page.
    only_ranks: set[int] | None = None
    #: Single log: hold the slow views as tables in the database (loader.build_database).
    serving_tables: bool = False


@dataclass
class ReportResult:
    db_path: Path
    stats: Stats
    files: int
    bytes: int


def echo_err(message: str) -> None:
    print(message, file=sys.stderr)


def load_with_progress(logs: list[Path], target: Path, serving_tables: bool = False) -> None:
    """Build a database from logs, with a progress bar on a terminal (serving_tables: see
    loader.build_database)."""
    total = sum(text_size(p) for p in logs if p.is_file())
    with byte_progress(total, "loading") as progress:
        build_database(logs, target, progress, serving_tables=serving_tables)


def load_apart(
    logs: list[Path],
    target: Path,
    meanwhile: Callable[[], object] | None = None,
    serving_tables: bool = False,
) -> None:
    """load_with_progress in a forked child, when a report is to follow in this process.

    The load's working memory (parser state, SQLite's page cache and index sorts) then goes
    back to the system before rendering starts, so the peak of `tldb report LOG` is the larger
    of the two phases, not their sum. Errors come back as the same exceptions. `meanwhile`
    runs here while the child loads (e.g. imports the server needs next).
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        load_with_progress(logs, target, serving_tables)
        if meanwhile is not None:
            meanwhile()
        return
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(load_with_progress, logs, target, serving_tables)
        if meanwhile is not None:
            meanwhile()
        future.result()


def load_summary(db, log_id: int) -> dict:
    """What tlparse prints at the end of a parse, as JSON-able values: the detected rank, the
    Stats counters and every unknown field occurrence (in log order). A many-rank report keeps
    it in each rank's step record, so printing it does not reopen the rank's database."""
    detected, stats_json = db.conn.execute(
        "SELECT detected_rank, stats FROM logs WHERE id = ?", [log_id]
    ).fetchone()
    unknown = [
        key
        for (keys,) in db.conn.execute(
            "SELECT unknown_keys FROM envelopes WHERE log_id = ? AND unknown_keys IS NOT NULL "
            "ORDER BY id",
            [log_id],
        )
        for key in orjson.loads(keys)
    ]
    return {"detected": detected, "stats": orjson.loads(stats_json), "unknown": unknown}


def print_summary(summary: dict, verbose: bool) -> Stats:
    """tlparse's end-of-parse lines (rank, Stats, unknown fields) from a load_summary."""
    stats = Stats(**summary["stats"])
    if verbose:
        for key in summary["unknown"]:
            echo_err(f"Unknown field {key}")
    if summary["detected"] is not None:
        echo_err(f"Detected rank: {summary['detected']}")
    echo_err(stats.tlparse_line())
    extra = stats.extra_line()
    if extra:
        echo_err(extra)
    unknown = dict.fromkeys(summary["unknown"])
    if unknown:
        echo_err(
            f"Unknown fields: {', '.join(unknown)} (kept in the database; see the envelope_kinds view)"
        )
    return stats


def print_load_summary(db, log_id: int, verbose: bool) -> Stats:
    """tlparse's end-of-parse lines (rank, Stats, unknown fields), from the logs table."""
    return print_summary(load_summary(db, log_id), verbose)


def _only_log(db) -> int:
    ids = [r[0] for r in db.conn.execute("SELECT id FROM logs ORDER BY id")]
    if len(ids) != 1:
        raise TldbError(f"the database holds {len(ids)} logs; a report renders exactly one")
    return ids[0]


def _index_page(ctx: ModuleContext, sections: Iterable[tuple[str, IndexContribution]]) -> str:
    ordered: dict[str, list[str]] = {name: [] for name in SECTION_ORDER}
    for _, contribution in sections:
        ordered.setdefault(contribution.section, []).append(contribution.html)
    return replace(ctx, module_dir=templates_dir()).render("index.html", sections=ordered)


def _write_index(site: Site, ctx: ModuleContext, sections: list[tuple[str, object]]) -> None:
    """index.html from the sections; when a module returned an IndexPage, that page is
    index.html and the usual index goes where the page says."""
    pages = [c for _, c in sections if isinstance(c, IndexPage)]
    usual = _index_page(ctx, [(m, c) for m, c in sections if isinstance(c, IndexContribution)])
    if pages:
        site.write(pages[0].moved_to, usual)
        site.write("index.html", pages[0].html)
    else:
        site.write("index.html", usual)


def render_report(
    db,
    log_id: int,
    out_dir: Path,
    config: ReportConfig,
    registry: ModuleRegistry,
    modules,
    on_file: Callable[[int], None] | None = None,
    jobs: int = 1,
    reopen: Callable[[], object] | None = None,
) -> tuple[Site, dict[str, list]]:
    """Render one loaded log's report into out_dir (which must exist); return the site written
    and the merged compile directory. Used for single-log reports and for each rank folder.
    `on_file(count)` is told the number of files written so far (progress). With jobs > 1
    and `reopen` (a new connection to the same database), modules render in parallel."""
    site = Site(out_dir)
    keys = compile_keys(db, log_id)
    ctx = ModuleContext(
        db=db,
        out_dir=site.root,
        config=config,
        manifest=build_manifest(db, log_id, keys),
        log_id=log_id,
        module_dir=Path(),
        memo={},  # one render: modules share what they would each compute (module_api)
    )
    base = plan_directory(db, log_id, config.mode, config.plain_text, keys)
    directory, sections = registry.render_all(modules, ctx, site, base, jobs, reopen, on_file)
    if not config.export_mode:
        _write_index(site, ctx, sections)
    return site, directory


def strict_problems(
    stats: Stats, directory: dict, strict: bool, strict_compile_id: bool, where: str = ""
) -> list[str]:
    """What --strict and --strict-compile-id object to (empty when all is well)."""
    problems = []
    if strict and stats.strict_failures():
        problems.append(f"--strict: {where or 'the log'} has problems: {stats.tlparse_line()}")
    if strict_compile_id and "unknown" in directory:
        suffix = f" ({where})" if where else ""
        problems.append(f"--strict-compile-id: Some log entries did not have compile id{suffix}")
    return problems


def run_report(request: ReportRequest) -> ReportResult:
    source = request.source
    out_dir = request.out_dir
    if not source.exists():
        raise InputError(f"{source} is not a file")
    if source.is_dir():
        raise InputError(folder_hint(source))
    registry = ModuleRegistry.discover(request.module_paths)
    modules = registry.for_mode(request.config.mode, request.modules)
    from_database = dbmod.is_database(source)
    db_path = source if from_database else (request.db_path or out_dir / DB_NAME)
    if (
        request.overwrite
        and out_dir.is_dir()
        and not out_dir.is_symlink()
        and staging.can_stage(out_dir)
    ):
        return _staged_report(request, registry, modules, db_path, from_database)
    old_content_gone = prepare_output(
        out_dir, request.overwrite, keep=db_path if from_database else None
    )
    try:
        return _report(request, registry, modules, db_path, from_database, out_dir)
    finally:
        old_content_gone()


def _staged_report(request: ReportRequest, registry, modules, db_path: Path, from_database: bool):
    """--overwrite over an existing folder: the report is written beside it and swapped in
    complete (staging.py), so a failure (a full disk) or a kill leaves the old report whole.
    A database inside the folder moves with it (the one re-rendered, or OUT/trace.db)."""
    out_dir = request.out_dir
    lock = lock_folder(out_dir)
    try:
        stage = staging.stage_for(out_dir)
        inside = _inside(db_path, out_dir)
        work_db = stage / inside if inside and not from_database else db_path
        strict = None
        with staging.swapped_in(stage, out_dir):
            try:
                result = _report(request, registry, modules, work_db, from_database, stage)
            except StrictError as exc:  # the report is complete all the same
                result, strict = None, exc
            if inside and from_database:
                (stage / inside).parent.mkdir(parents=True, exist_ok=True)
                os.rename(db_path, stage / inside)
    finally:
        unlock(lock)
    if strict is not None:
        raise StrictError(str(strict).replace(str(stage), str(out_dir)))
    return replace(result, db_path=out_dir / inside if inside else db_path)


def _inside(path: Path, folder: Path) -> Path | None:
    """path relative to folder when it lies inside it, else None."""
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def _report(
    request: ReportRequest,
    registry,
    modules,
    db_path: Path,
    from_database: bool,
    out_dir: Path,
):
    source = request.source
    if not from_database:
        load_apart([source], db_path, serving_tables=request.serving_tables)
    db = dbmod.open_readonly(db_path)
    try:
        log_id = _only_log(db)
        stats = print_load_summary(db, log_id, request.config.verbose)
        expected = db.conn.execute(
            "SELECT count(*) FROM outputs WHERE log_id = ? AND mode = ?",
            [log_id, request.config.mode],
        ).fetchone()[0]
        with count_progress(expected, "writing") as on_file:
            site, directory = render_report(
                db,
                log_id,
                out_dir,
                request.config,
                registry,
                modules,
                on_file,
                jobs=request.jobs,
                reopen=lambda: dbmod.open_readonly(db_path),
            )
    finally:
        db.conn.close()
    problems = strict_problems(stats, directory, request.strict, request.strict_compile_id)
    if problems:
        raise StrictError("; ".join(problems) + f" (report written to {out_dir})")
    return ReportResult(db_path, stats, site.files, site.bytes)
