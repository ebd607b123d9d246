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

import sys
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from tldb import db as dbmod
from tldb import rankstaging, rankstep, resume
from tldb.combine import combine
from tldb.errors import InputError, StrictError, TldbError
from tldb.executors import Step, rank_executor, run_steps
from tldb.module_api import MULTI_RANK_MODE, Manifest, ModuleContext, ReportConfig
from tldb.progress import rank_progress
from tldb.rankfiles import RankFolder, discover
from tldb.registry import ModuleRegistry
from tldb.report import (
    DB_NAME,
    ReportRequest,
    print_summary,
    strict_problems,
)
from tldb.site import Site, prepare_output

COMBINED_DB = "ranks.db"


@dataclass
class MultiRankResult:
    ranks: list[int]
    combined_db: Path
    #: Wall seconds of each stage (load, render, combine, cross-rank).
    stages: dict[str, float] = field(default_factory=dict)
    #: Ranks whose outputs were reused (complete and up to date), per step.
    reused_loads: list[int] = field(default_factory=list)
    reused_renders: list[int] = field(default_factory=list)


def current_records(folder: RankFolder, out_dir: Path, keys: dict[int, dict]) -> dict[int, dict]:
    """The step records of the ranks already loaded in OUT for this run (rankstep), by rank,
    as the driver keeps them (rankstep.for_driver)."""
    records = {}
    for log in folder.logs:
        record = rankstep.current_record(out_dir / f"rank_{log.rank}", keys[log.rank])
        if record is not None:
            records[log.rank] = rankstep.for_driver(record)
    return records


def load_ranks(
    folder: RankFolder,
    out_dir: Path,
    executor: Executor,
    keys: dict[int, dict],
    workers: int,
    current: dict[int, dict],
) -> tuple[dict[int, Path], dict[int, dict]]:
    """Load every rank log into OUT/rank_N/trace.db, except the ranks of `current` (their
    step records: already loaded for this run); the rank databases and the step records of
    every rank (rankstep.load_step), by rank.

    A load reads in a second process (tldb/pipeline.py) only when loads run one at a time:
    with several at once every core is already busy."""
    records = dict(current)
    todo = [log for log in folder.logs if log.rank not in records]
    pipelined = workers == 1 or len(todo) == 1
    rank_dirs = {log.rank: out_dir / f"rank_{log.rank}" for log in folder.logs}
    steps = [
        Step(f"rank {log.rank} (load of {log.path})", rankstep.load_step,
             (log.path, rank_dirs[log.rank], keys[log.rank], pipelined), log.path.stat().st_size)
        for log in todo
    ]  # fmt: skip
    with rank_progress(len(steps), "loading ranks") as progress:
        done = run_steps(executor, steps, progress)
        records.update(zip((log.rank for log in todo), done, strict=True))
    dbs = {rank: path / DB_NAME for rank, path in rank_dirs.items()}
    return dbs, records


def inherited_strings(folder: RankFolder, records: dict[int, dict]) -> dict[int, dict[int, str]]:
    """What tlparse's shared string table holds for each rank beyond the rank's own entries:
    the entries of the ranks listed before it in the folder, later ones overwriting.

    Each rank's own table leaves its record once read, and ranks whose inherited tables are
    equal share one dict: the parent process holds these for every rank until the renders
    end, and at a thousand ranks a table each was the main part of its memory growing with
    the number of ranks (ranks of one job mostly intern the same files, so few tables differ)."""
    table: dict[int, str] = {}
    inherited: dict[int, dict[int, str]] = {}
    shared: dict[tuple, dict[int, str]] = {}
    for rank in folder.listing:
        own = dict(orjson.loads(records[rank]["summary"].pop("strings", b"[]")))
        entries = {idx: value for idx, value in table.items() if idx not in own}
        inherited[rank] = shared.setdefault(tuple(sorted(entries.items())), entries)
        table.update(own)
    return inherited


def render_landing(
    combined: Path,
    out_dir: Path,
    config: ReportConfig,
    registry: ModuleRegistry,
    modules,
    rank_databases: dict[int, Path] | None = None,
    jobs: int = 1,
) -> Site:
    """Run the multi-rank modules over the combined database, writing into OUT, on up to
    `jobs` processes (modules and their parts); `rank_databases` says where each rank's own
    database is (ModuleContext.rank_database)."""
    site = Site(out_dir, unlink_first=True)  # rank folders may be links (rankstaging.py)
    db = dbmod.open_readonly(combined)
    try:
        ctx = ModuleContext(
            db=db,
            out_dir=site.root,
            config=config,
            manifest=Manifest(()),
            log_id=0,
            module_dir=Path(),
            rank_databases=rank_databases or {},
        )
        registry.render_all(
            modules, ctx, site, {}, jobs, reopen=lambda: dbmod.open_readonly(combined)
        )
    finally:
        db.conn.close()
    return site


def _timed_combine(dbs: dict[int, Path], target: Path) -> float:
    """Build the combined database; the seconds it took."""
    start = time.perf_counter()
    combine(sorted(dbs.items()), target)
    return time.perf_counter() - start


class StageClock:
    """Wall time of each stage of a multi-rank report, printed with -v (`stage NAME: S s`) so
    a user (and bench/many_ranks.py) sees where the time of a many-rank run goes."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.times: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, stage: str) -> None:
        """The stage that ran since the previous one ended has ended now."""
        now = time.perf_counter()
        self.report(stage, now - self._last)
        self._last = now

    def report(self, stage: str, seconds: float) -> None:
        """A stage timed elsewhere (one that overlapped another)."""
        self.times[stage] = seconds
        if self.verbose:
            print(f"stage {stage}: {seconds:.2f} s", file=sys.stderr, flush=True)


def _echo(lines: Iterable[str]) -> None:
    for line in lines:
        print(line, flush=True)


def run_multi_rank(request: ReportRequest, workers: int | None = None) -> MultiRankResult | None:
    """The multi-rank report of the rank logs in folder `request.source`; `request.db_path`
    names the combined database (default OUT/ranks.db). With `request.only_ranks`, only those
    ranks' steps run (a batch job's share) and there is no result."""
    out_dir = request.out_dir
    config = request.config
    registry = ModuleRegistry.discover(request.module_paths)
    registry.for_mode(config.mode, request.modules)  # unknown --modules fail before any work
    try:
        folder = discover(request.source)
    except TldbError:
        if request.only_ranks is None:
            prepare_output(out_dir, request.overwrite)()  # tlparse sets OUT up first
        raise
    keys = {
        log.rank: rankstep.step_key(log.path, config, request.modules, request.module_paths)
        for log in folder.logs
    }
    workers = workers or request.jobs
    if request.only_ranks is not None:
        _rank_steps_only(request, folder, keys, workers)
        return None
    if rankstaging.wanted(out_dir, request.overwrite, keys):
        return _staged_multi_rank(request, folder, keys, registry, workers)
    current = current_records(folder, out_dir, keys)
    reusable = [out_dir / f"rank_{rank}" for rank in current]
    # A folder of tldb's own rank outputs, or what a killed run of this command left
    # (resume.py), is taken over without --overwrite; the rest of it goes.
    taken = request.overwrite or bool(reusable) or resume.resumable(out_dir, keys)
    old_content_gone = prepare_output(out_dir, taken, reusable)
    try:
        resume.mark(out_dir, keys)
        return _multi_rank(request, folder, keys, current, registry, workers)
    finally:
        old_content_gone()


def _staged_multi_rank(
    request: ReportRequest,
    folder: RankFolder,
    keys: dict[int, dict],
    registry: ModuleRegistry,
    workers: int,
) -> MultiRankResult:
    """--overwrite over an existing report: built beside it and swapped in (rankstaging.py)."""
    out_dir = request.out_dir

    def build(stage: Path) -> MultiRankResult:
        db_path = rankstaging.moved(request.db_path, out_dir, stage)
        staged = replace(request, out_dir=stage, db_path=db_path)
        current = current_records(folder, stage, keys)
        outside = db_path is not None and db_path == request.db_path  # --db outside OUT
        try:
            result = _multi_rank(staged, folder, keys, current, registry, workers, out_dir)
        except StrictError:  # complete all the same
            if outside:
                rankstaging.repoint(db_path, out_dir, stage)
            raise
        if outside:
            rankstaging.repoint(db_path, out_dir, stage)
        return result

    result = rankstaging.run_staged(out_dir, keys, build)
    result.combined_db = request.db_path or out_dir / COMBINED_DB
    return result


def _render_steps(
    folder: RankFolder,
    out_dir: Path,
    keys: dict[int, dict],
    records: dict[int, dict],
    request: ReportRequest,
    inherited: dict[int, dict[int, str]],
) -> tuple[list[int], list[Step], dict[int, dict]]:
    """(ranks to render, their steps, the render records of ranks already rendered), from
    every rank's step record (load_ranks)."""
    ranks, steps, done = [], [], {}
    for log in folder.logs:
        rank_dir = out_dir / f"rank_{log.rank}"
        render = rankstep.rendered(records[log.rank], inherited[log.rank])
        if render is not None:
            done[log.rank] = render
            continue
        args = (
            rank_dir,
            keys[log.rank],
            request.config,
            request.modules,
            request.module_paths,
            inherited[log.rank],
        )
        cost = (rank_dir / DB_NAME).stat().st_size
        ranks.append(log.rank)
        steps.append(Step(f"rank {log.rank} (render)", rankstep.render_step, args, cost))
    return ranks, steps, done


def _rank_steps_only(
    request: ReportRequest, folder: RankFolder, keys: dict[int, dict], workers: int
) -> None:
    """A batch job's share: load and render the ranks asked for into OUT/rank_N, nothing else.

    Their pages are rendered without the string table earlier ranks leak (tlparse's quirk,
    see the module docstring): the command that writes the landing page re-renders the ranks
    whose pages depend on it."""
    wanted = request.only_ranks or set()
    missing = sorted(wanted - {log.rank for log in folder.logs})
    if missing:
        raise InputError(f"no log for rank(s) {', '.join(map(str, missing))} in {request.source}")
    logs = tuple(log for log in folder.logs if log.rank in wanted)
    share = RankFolder(logs, tuple(r for r in folder.listing if r in wanted), folder.from_envelopes)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    with rank_executor(workers, request.scheduler) as executor:
        current = current_records(share, request.out_dir, keys)
        _, records = load_ranks(share, request.out_dir, executor, keys, workers, current)
        none = {log.rank: {} for log in logs}
        _, steps, _ = _render_steps(share, request.out_dir, keys, records, request, none)
        with rank_progress(len(steps), "rendering ranks") as progress:
            run_steps(executor, steps, progress)
    ranks = ", ".join(str(log.rank) for log in logs)
    _echo([f"Rank(s) {ranks} done under {request.out_dir}"])


def _multi_rank(
    request: ReportRequest,
    folder: RankFolder,
    keys: dict[int, dict],
    current: dict[int, dict],
    registry: ModuleRegistry,
    workers: int,
    shown: Path | None = None,
) -> MultiRankResult:
    """The run itself, writing into request.out_dir; `shown` is the folder named to the user
    when that is a staging folder (rankstaging.py)."""
    out_dir, config = request.out_dir, request.config
    shown = shown or out_dir
    if folder.from_envelopes:
        names = ", ".join(f"rank {log.rank} = {log.path.name}" for log in folder.logs)
        print(
            f"No dedicated_log_torch_trace_rank_N files; ranks read from envelopes: {names}",
            file=sys.stderr,
        )
    clock = StageClock(config.verbose)
    with rank_executor(workers, request.scheduler) as executor:
        dbs, records = load_ranks(folder, out_dir, executor, keys, workers, current)
        clock.done("load")
        stats_by_rank = {}
        for log in folder.logs:
            _echo([f"Processing rank {log.rank} → {shown / f'rank_{log.rank}'}"])
            summary = records[log.rank]["summary"]
            stats_by_rank[log.rank] = print_summary(summary, config.verbose)
        inherited = inherited_strings(folder, records)
        ranks, steps, renders = _render_steps(folder, out_dir, keys, records, request, inherited)
        reused_renders = sorted(renders)
        combined = request.db_path or out_dir / COMBINED_DB
        # The combined database needs only the loaded ranks: it is built by a worker while
        # the others render, not after them on one core. (A worker, not a thread here: a
        # thread running while the pool forks a worker can leave a lock held in the child.)
        combining = executor.submit(_timed_combine, dbs, combined)
        with rank_progress(len(steps), "rendering ranks") as progress:
            renders.update(zip(ranks, run_steps(executor, steps, progress), strict=True))
        clock.done("render")
        clock.report("combine (during render)", combining.result())
    problems: list[str] = []
    for log in folder.logs:
        directory = {"unknown": []} if renders[log.rank]["unknown_compile_id"] else {}
        problems += strict_problems(
            stats_by_rank[log.rank],
            directory,
            request.strict,
            request.strict_compile_id,
            where=f"rank {log.rank}",
        )
    landing_modules = registry.for_mode(MULTI_RANK_MODE, request.modules)
    render_landing(combined, out_dir, config, registry, landing_modules, dbs, workers)
    resume.unmark(out_dir)
    clock.done("cross-rank")
    for name, label in (
        ("runtime_estimations.json", "Runtime estimations"),
        ("collective_schedules.json", "Collective schedules"),
    ):
        if (out_dir / name).is_file():
            _echo([f"{label}: {shown / name}"])
    _echo([f"Multi-rank report generated under {shown}", "Individual pages: rank_*/index.html"])
    if problems:
        raise StrictError("; ".join(problems) + f" (report written to {shown})")
    return MultiRankResult(
        [log.rank for log in folder.logs],
        combined,
        clock.times,
        sorted(current),
        reused_renders,
    )
