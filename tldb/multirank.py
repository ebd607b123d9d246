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
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from tldb import db as dbmod
from tldb import rankstaging, rankstep, resume
from tldb.combine import combine
from tldb.errors import InputError, StrictError, TldbError
from tldb.executors import (
    LazySteps,
    Step,
    forked_early,
    give_back_memory,
    rank_executor,
    run_steps,
)
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
from tldb.stats import Stats

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


def _current(
    folder: RankFolder, out_dir: Path, keys: dict[int, dict]
) -> Iterator[tuple[int, dict]]:
    """(rank, step record) of each rank already loaded in OUT for this run (rankstep)."""
    for log in folder.logs:
        record = rankstep.current_record(out_dir / f"rank_{log.rank}", keys[log.rank])
        if record is not None:
            yield log.rank, record


def current_records(folder: RankFolder, out_dir: Path, keys: dict[int, dict]) -> dict[int, dict]:
    """The step records of the ranks already loaded in OUT for this run, by rank, as the
    driver keeps them (rankstep.for_driver)."""
    return {rank: rankstep.for_driver(record) for rank, record in _current(folder, out_dir, keys)}


def current_ranks(folder: RankFolder, out_dir: Path, keys: dict[int, dict]) -> list[int]:
    """The ranks already loaded in OUT for this run, only their numbers: their records stay
    on disk until needed (_record)."""
    return [rank for rank, _ in _current(folder, out_dir, keys)]


def _load_steps(
    folder: RankFolder, out_dir: Path, keys: dict[int, dict], workers: int, done: Collection[int]
) -> tuple[list[int], LazySteps]:
    """The ranks to load (all but those `done`) and their load steps, made when submitted.

    A load reads in a second process (tldb/pipeline.py) only when loads run one at a time:
    with several at once every core is already busy."""
    todo = [log for log in folder.logs if log.rank not in done]
    pipelined = workers == 1 or len(todo) == 1

    def make(i: int) -> Step:
        log = todo[i]
        args = (log.path, out_dir / f"rank_{log.rank}", keys[log.rank], pipelined)
        return Step(f"rank {log.rank} (load of {log.path})", rankstep.load_step, args)

    costs = [log.path.stat().st_size for log in todo]
    return [log.rank for log in todo], LazySteps(costs, make)


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
    every rank (rankstep.load_step), by rank. (A many-rank report keeps none of this: see
    _multi_rank.)"""
    records = dict(current)
    ranks, steps = _load_steps(folder, out_dir, keys, workers, records)
    with rank_progress(len(steps), "loading ranks") as progress:
        records.update(zip(ranks, run_steps(executor, steps, progress), strict=True))
    return _rank_databases(folder, out_dir), records


def _rank_databases(folder: RankFolder, out_dir: Path) -> dict[int, Path]:
    return {log.rank: out_dir / f"rank_{log.rank}" / DB_NAME for log in folder.logs}


def _record(out_dir: Path, rank: int) -> dict:
    """Rank `rank`'s step record, read back from OUT/rank_N (rankstep.py): the process driving
    a many-rank run keeps no rank's record, which at a thousand ranks was megabytes held
    until the end for the few facts read once each (summary lines, strings, strict checks)."""
    record = rankstep.read_record(out_dir / f"rank_{rank}")
    if record is None or not isinstance(record.get("summary"), dict):
        raise TldbError(f"rank {rank}: its step record in {out_dir / f'rank_{rank}'} is gone")
    return record


def _nothing(_result: object) -> None:
    """What the driver keeps of a step's result: nothing (the step's record is on disk)."""


def inherited_strings(folder: RankFolder, records: dict[int, dict]) -> dict[int, dict[int, str]]:
    """What tlparse's shared string table holds for each rank beyond the rank's own entries:
    the entries of the ranks listed before it in the folder, later ones overwriting.

    Each rank's own table leaves its record once read, and ranks whose inherited tables are
    equal share one dict: the parent process holds these for every rank until the renders
    end, and at a thousand ranks a table each was the main part of its memory growing with
    the number of ranks (ranks of one job mostly intern the same files, so few tables differ)."""
    return _inherit(
        folder.listing, lambda rank: orjson.loads(records[rank]["summary"].pop("strings", b"[]"))
    )


def _inherit(listing: Iterable[int], own_table: Callable[[int], list]) -> dict[int, dict[int, str]]:
    """inherited_strings from each rank's own string table as `own_table(rank)` gives it."""
    table: dict[int, str] = {}
    inherited: dict[int, dict[int, str]] = {}
    shared: dict[tuple, dict[int, str]] = {}
    for rank in listing:
        own = dict(own_table(rank))
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


def _own_strings(out_dir: Path, rank: int) -> list:
    """A rank's own string table, [[idx, value], ...], from its step record on disk."""
    strings = _record(out_dir, rank)["summary"].get("strings")
    return strings if isinstance(strings, list) else []


def _timed_combine(out_dir: Path, ranks: list[int], target: Path) -> float:
    """Build the combined database of the ranks' databases in out_dir; the seconds it took.
    (Rank numbers, not paths: a pool keeps a task's arguments until it ends.) The worker
    that ran it renders ranks next: what the combine's SQLite cache and sorts took goes back
    to the system."""
    start = time.perf_counter()
    combine(
        [(rank, out_dir / f"rank_{rank}" / DB_NAME) for rank in sorted(ranks)], target, checked=True
    )
    give_back_memory()
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
    config = request.config
    registry = ModuleRegistry.discover(request.module_paths)
    registry.for_mode(config.mode, request.modules)  # unknown --modules fail before any work
    workers = workers or request.jobs
    with forked_early(workers, request.scheduler) as pool:
        return _run_multi_rank(request, registry, workers, pool)


def _run_multi_rank(
    request: ReportRequest, registry: ModuleRegistry, workers: int, pool: Executor | None
) -> MultiRankResult | None:
    """run_multi_rank once the local workers are forked (`pool`, see forked_early)."""
    out_dir, config = request.out_dir, request.config
    try:
        folder = discover(request.source)
    except TldbError:
        if request.only_ranks is None:
            prepare_output(out_dir, request.overwrite)()  # tlparse sets OUT up first
        raise
    keys = rankstep.step_keys(folder.logs, config, request.modules, request.module_paths)
    if request.only_ranks is not None:
        _rank_steps_only(request, folder, keys, workers, pool)
        return None
    if rankstaging.wanted(out_dir, request.overwrite, keys):
        return _staged_multi_rank(request, folder, keys, registry, workers, pool)
    current = current_ranks(folder, out_dir, keys)
    reusable = [out_dir / f"rank_{rank}" for rank in current]
    # A folder of tldb's own rank outputs, or what a killed run of this command left
    # (resume.py), is taken over without --overwrite; the rest of it goes.
    taken = request.overwrite or bool(reusable) or resume.resumable(out_dir, keys)
    old_content_gone = prepare_output(out_dir, taken, reusable)
    try:
        resume.mark(out_dir, keys)
        return _multi_rank(request, folder, keys, current, registry, workers, pool)
    finally:
        old_content_gone()


def _staged_multi_rank(
    request: ReportRequest,
    folder: RankFolder,
    keys: dict[int, dict],
    registry: ModuleRegistry,
    workers: int,
    pool: Executor | None,
) -> MultiRankResult:
    """--overwrite over an existing report: built beside it and swapped in (rankstaging.py)."""
    out_dir = request.out_dir

    def build(stage: Path) -> MultiRankResult:
        db_path = rankstaging.moved(request.db_path, out_dir, stage)
        staged = replace(request, out_dir=stage, db_path=db_path)
        current = current_ranks(folder, stage, keys)
        outside = db_path is not None and db_path == request.db_path  # --db outside OUT
        try:
            result = _multi_rank(staged, folder, keys, current, registry, workers, pool, out_dir)
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
    record: Callable[[int], dict],
    request: ReportRequest,
    inherited: dict[int, dict[int, str]],
) -> tuple[list[int], LazySteps, list[int]]:
    """(ranks to render, their steps, made when submitted, the ranks already rendered with
    their inherited string table), from every rank's step record as `record(rank)` gives it."""
    ranks, costs, done = [], [], []
    for log in folder.logs:
        if rankstep.rendered(record(log.rank), inherited[log.rank]) is not None:
            done.append(log.rank)
            continue
        ranks.append(log.rank)
        costs.append((out_dir / f"rank_{log.rank}" / DB_NAME).stat().st_size)

    def make(i: int) -> Step:
        rank = ranks[i]
        args = (
            out_dir / f"rank_{rank}",
            keys[rank],
            request.config,
            request.modules,
            request.module_paths,
            inherited[rank],
        )
        return Step(f"rank {rank} (render)", rankstep.render_step, args)

    return ranks, LazySteps(costs, make), done


def _rank_steps_only(
    request: ReportRequest,
    folder: RankFolder,
    keys: dict[int, dict],
    workers: int,
    pool: Executor | None,
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
    with rank_executor(workers, request.scheduler, pool) as executor:
        current = current_records(share, request.out_dir, keys)
        _, records = load_ranks(share, request.out_dir, executor, keys, workers, current)
        none = {log.rank: {} for log in logs}
        _, steps, _ = _render_steps(
            share, request.out_dir, keys, records.__getitem__, request, none
        )
        with rank_progress(len(steps), "rendering ranks") as progress:
            run_steps(executor, steps, progress)
    ranks = ", ".join(str(log.rank) for log in logs)
    _echo([f"Rank(s) {ranks} done under {request.out_dir}"])


def _load(
    request: ReportRequest,
    folder: RankFolder,
    keys: dict[int, dict],
    current: list[int],
    executor: Executor,
    workers: int,
) -> dict[int, dict[int, str]]:
    """Load the ranks not in `current`; the string table each rank inherits (inherited_strings),
    read from the step records on disk. The steps' results are dropped as they come and what
    the load phase allocated is handed back: the driver then waits through the render stage,
    when the process tree is at its largest, at the size it started with."""
    out_dir = request.out_dir
    _, steps = _load_steps(folder, out_dir, keys, workers, set(current))
    with rank_progress(len(steps), "loading ranks") as progress:
        run_steps(executor, steps, progress, keep=_nothing)
    del steps
    inherited = _inherit(folder.listing, functools.partial(_own_strings, out_dir))
    give_back_memory()
    return inherited


def _print_summaries(folder: RankFolder, out_dir: Path, verbose: bool, shown: Path) -> None:
    """tlparse's lines for each rank, in rank order, from the records on disk."""
    for log in folder.logs:
        _echo([f"Processing rank {log.rank} → {shown / f'rank_{log.rank}'}"])
        print_summary(_record(out_dir, log.rank)["summary"], verbose)


def _strict_problems(folder: RankFolder, request: ReportRequest) -> list[str]:
    """What --strict and --strict-compile-id object to, rank by rank, from the step records
    on disk (a load's stats, a render's unknown compile ids)."""
    if not (request.strict or request.strict_compile_id):
        return []
    problems: list[str] = []
    for log in folder.logs:
        record = _record(request.out_dir, log.rank)
        render = record.get("render") if isinstance(record.get("render"), dict) else {}
        directory = {"unknown": []} if render.get("unknown_compile_id") else {}
        problems += strict_problems(
            Stats(**record["summary"]["stats"]),
            directory,
            request.strict,
            request.strict_compile_id,
            where=f"rank {log.rank}",
        )
    return problems


def _multi_rank(
    request: ReportRequest,
    folder: RankFolder,
    keys: dict[int, dict],
    current: list[int],
    registry: ModuleRegistry,
    workers: int,
    pool: Executor | None,
    shown: Path | None = None,
) -> MultiRankResult:
    """The run itself, writing into request.out_dir; `current`: the ranks already loaded for
    this run; `shown` is the folder named to the user when that is a staging folder
    (rankstaging.py)."""
    out_dir, config = request.out_dir, request.config
    shown = shown or out_dir
    if folder.from_envelopes:
        names = ", ".join(f"rank {log.rank} = {log.path.name}" for log in folder.logs)
        print(
            f"No dedicated_log_torch_trace_rank_N files; ranks read from envelopes: {names}",
            file=sys.stderr,
        )
    clock = StageClock(config.verbose)
    combined = request.db_path or out_dir / COMBINED_DB
    with rank_executor(workers, request.scheduler, pool) as executor:
        inherited = _load(request, folder, keys, current, executor, workers)
        clock.done("load")
        _print_summaries(folder, out_dir, config.verbose, shown)
        ranks, steps, reused_renders = _render_steps(
            folder, out_dir, keys, functools.partial(_record, out_dir), request, inherited
        )
        # The combined database needs only the loaded ranks: it is built by a worker while
        # the others render, not after them on one core. (A worker, not a thread here: a
        # thread running while the pool forks a worker can leave a lock held in the child.)
        combining = executor.submit(
            _timed_combine, out_dir, [log.rank for log in folder.logs], combined
        )
        with rank_progress(len(steps), "rendering ranks") as progress:
            run_steps(executor, steps, progress, keep=_nothing)
        del ranks, steps
        clock.done("render")
        clock.report("combine (during render)", combining.result())
    if pool is not None:
        # The rank steps are over: the workers forked early go now, not after the landing,
        # which forks a worker of its own (multi_rank renders in two parts).
        pool.shutdown()
    problems = _strict_problems(folder, request)
    landing_modules = registry.for_mode(MULTI_RANK_MODE, request.modules)
    render_landing(
        combined,
        out_dir,
        config,
        registry,
        landing_modules,
        _rank_databases(folder, out_dir),
        workers,
    )
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
