"""`tldb report DIR --all-ranks-html`: one report per rank, a combined database, a landing page.

Steps, each independent of worker scheduling and of the folder's listing order:
1. find the rank logs (rankfiles.py);
2. load every rank into OUT/rank_N/trace.db, in parallel (one process per core);
3. print tlparse's lines for each rank, in rank order;
4. render every rank's report into OUT/rank_N, in parallel, exactly as a single-log report;
5. combine the rank databases into OUT/ranks.db (combine.py);
6. run the multi-rank modules on the combined database: the landing page and cross-rank files.

The one deliberate use of the listing order: tlparse parses the ranks one after another in the
order the folder lists them, with a process-global string table, so a rank's raw.jsonl (and its
stack frames) also hold the file names earlier ranks interned. tldb's databases keep each rank's
own table; to write the same raw.jsonl, a rank's report is rendered over a temporary `strings`
table that adds what the ranks listed before it left behind. Nothing else sees those rows: the
analyses run on the combined database, where each rank has only its own strings.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tldb import db as dbmod
from tldb.combine import combine
from tldb.errors import StrictError
from tldb.loader import build_database
from tldb.module_api import MULTI_RANK_MODE, Manifest, ModuleContext, ReportConfig
from tldb.parallel import run_tasks_forked
from tldb.rankfiles import RankFolder, discover
from tldb.registry import ModuleRegistry
from tldb.report import (
    DB_NAME,
    ReportRequest,
    print_load_summary,
    render_report,
    strict_problems,
)
from tldb.site import Site, prepare_output

COMBINED_DB = "ranks.db"


@dataclass
class MultiRankResult:
    ranks: list[int]
    combined_db: Path


def run_tasks(
    function: Callable, tasks: list[tuple], workers: int, costs: list[int] | None = None
) -> list:
    """Results of function(*task) for each task, in task order, on up to `workers` processes.

    Tasks start in order of falling `costs` (file sizes), so the big ones do not end up last
    on one worker while the other has nothing left to do."""

    def start(in_child: bool) -> Callable[[int], object]:
        return lambda index: function(*tasks[index])

    return run_tasks_forked(len(tasks), start, workers, costs=costs)


def load_rank(log: Path, target: Path, pipelined: bool) -> None:
    build_database([log], target, pipelined=pipelined)


def load_ranks(
    folder: RankFolder, out_dir: Path, workers: int, pipelined: bool | None = None
) -> dict[int, Path]:
    """Load every rank log into OUT/rank_N/trace.db; the rank's database path, by rank.

    By default a load reads in a second process (tldb/pipeline.py) only when the loads run
    one at a time: with several at once every core is already busy."""
    targets = {log.rank: out_dir / f"rank_{log.rank}" / DB_NAME for log in folder.logs}
    if pipelined is None:
        pipelined = workers == 1 or len(folder.logs) == 1
    tasks = [(log.path, targets[log.rank], pipelined) for log in folder.logs]
    run_tasks(load_rank, tasks, workers, [log.path.stat().st_size for log in folder.logs])
    return targets


def inherited_strings(folder: RankFolder, dbs: dict[int, Path]) -> dict[int, dict[int, str]]:
    """What tlparse's shared string table holds for each rank beyond the rank's own entries:
    the entries of the ranks listed before it in the folder, later ones overwriting."""
    table: dict[int, str] = {}
    inherited: dict[int, dict[int, str]] = {}
    for rank in folder.listing:
        db = dbmod.open_readonly(dbs[rank])
        try:
            own = dict(db.conn.execute("SELECT idx, value FROM strings ORDER BY log_id, idx"))
        finally:
            db.conn.close()
        inherited[rank] = {idx: value for idx, value in table.items() if idx not in own}
        table.update(own)
    return inherited


@functools.cache
def _registry(module_paths: tuple[Path, ...]) -> ModuleRegistry:
    """One module discovery per worker process, not one per rank."""
    return ModuleRegistry.discover(module_paths)


def render_rank(
    db_path: Path,
    out_dir: Path,
    config: ReportConfig,
    module_ids: list[str] | None,
    module_paths: list[Path],
    inherited: dict[int, str],
) -> tuple[int, int, bool]:
    """Render one rank's report (in a worker); return files, bytes and whether the compile
    directory has an unknown compile id (for --strict-compile-id)."""
    registry = _registry(tuple(module_paths))
    modules = registry.for_mode(config.mode, module_ids)
    db = dbmod.open_readonly(db_path)
    try:
        (log_id,) = db.conn.execute("SELECT id FROM logs ORDER BY id").fetchone()
        if inherited:
            # Shadows main.strings for this connection only; the database file is untouched.
            db.conn.execute("CREATE TEMP TABLE strings AS SELECT * FROM main.strings")
            db.conn.executemany(
                "INSERT INTO temp.strings (log_id, idx, value, line) VALUES (?, ?, ?, 0)",
                [(log_id, idx, value) for idx, value in sorted(inherited.items())],
            )
        site, directory = render_report(db, log_id, out_dir, config, registry, modules)
    finally:
        db.conn.close()
    return site.files, site.bytes, "unknown" in directory


def render_landing(
    combined: Path, out_dir: Path, config: ReportConfig, registry: ModuleRegistry, modules
) -> Site:
    """Run the multi-rank modules over the combined database, writing into OUT."""
    site = Site(out_dir)
    db = dbmod.open_readonly(combined)
    try:
        ctx = ModuleContext(
            db=db,
            out_dir=site.root,
            config=config,
            manifest=Manifest(()),
            log_id=0,
            module_dir=Path(),
        )
        registry.render_all(modules, ctx, site, {})
    finally:
        db.conn.close()
    return site


def _echo(lines: Iterable[str]) -> None:
    for line in lines:
        print(line, flush=True)


def run_multi_rank(request: ReportRequest, workers: int | None = None) -> MultiRankResult:
    """The multi-rank report of the rank logs in folder `request.source`; `request.db_path`
    names the combined database (default OUT/ranks.db)."""
    out_dir = request.out_dir
    config = request.config
    if not request.source.is_dir():
        discover(request.source)  # raises tlparse's "must be a directory" error
    registry = ModuleRegistry.discover(request.module_paths)
    registry.for_mode(config.mode, request.modules)  # unknown --modules fail before any work
    # tlparse sets OUT up before looking for logs.
    old_content_gone = prepare_output(out_dir, request.overwrite)
    try:
        return _multi_rank(request, registry, workers)
    finally:
        old_content_gone()


def _multi_rank(
    request: ReportRequest, registry: ModuleRegistry, workers: int | None
) -> MultiRankResult:
    out_dir, config = request.out_dir, request.config
    folder = discover(request.source)
    if folder.from_envelopes:
        names = ", ".join(f"rank {log.rank} = {log.path.name}" for log in folder.logs)
        print(
            f"No dedicated_log_torch_trace_rank_N files; ranks read from envelopes: {names}",
            file=sys.stderr,
        )
    workers = workers or request.jobs
    dbs = load_ranks(folder, out_dir, workers)
    problems: list[str] = []
    stats_by_rank = {}
    for log in folder.logs:
        _echo([f"Processing rank {log.rank} → {out_dir / f'rank_{log.rank}'}"])
        db = dbmod.open_readonly(dbs[log.rank])
        try:
            (log_id,) = db.conn.execute("SELECT id FROM logs").fetchone()
            stats_by_rank[log.rank] = print_load_summary(db, log_id, config.verbose)
        finally:
            db.conn.close()
    inherited = inherited_strings(folder, dbs)
    tasks = [
        (
            dbs[log.rank],
            out_dir / f"rank_{log.rank}",
            config,
            request.modules,
            request.module_paths,
            inherited[log.rank],
        )
        for log in folder.logs
    ]
    rendered = run_tasks(
        render_rank, tasks, workers, [dbs[log.rank].stat().st_size for log in folder.logs]
    )
    for log, (_, _, unknown) in zip(folder.logs, rendered, strict=True):
        directory = {"unknown": []} if unknown else {}
        problems += strict_problems(
            stats_by_rank[log.rank],
            directory,
            request.strict,
            request.strict_compile_id,
            where=f"rank {log.rank}",
        )
    combined = request.db_path or out_dir / COMBINED_DB
    combine([(rank, path) for rank, path in dbs.items()], combined)
    landing_modules = registry.for_mode(MULTI_RANK_MODE, request.modules)
    render_landing(combined, out_dir, config, registry, landing_modules)
    for name, label in (
        ("runtime_estimations.json", "Runtime estimations"),
        ("collective_schedules.json", "Collective schedules"),
    ):
        if (out_dir / name).is_file():
            _echo([f"{label}: {out_dir / name}"])
    _echo([f"Multi-rank report generated under {out_dir}", "Individual pages: rank_*/index.html"])
    if problems:
        raise StrictError("; ".join(problems) + f" (report written to {out_dir})")
    return MultiRankResult([log.rank for log in folder.logs], combined)
