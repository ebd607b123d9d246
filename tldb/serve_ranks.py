"""`tldb serve RANKS/`: a folder of rank logs, served as `tldb report RANKS --all-ranks-html`
would write it (landing page at /report/, each rank's report at /report/rank_N/), made on
request from the rank databases.

The ranks are loaded by the multi-rank report's own steps into a cache folder (reused while
the logs are unchanged, through the rank step records) and combined. Each rank's on-demand
files come from its database, seen with the strings earlier ranks left (as its render sees
them); the landing page, the cross-rank files and every rank's cached pages are rendered once,
in one forked process, into a temporary folder laid out like the static report.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tldb import rankstep
from tldb.combine import combine
from tldb.errors import TldbError
from tldb.executors import rank_executor
from tldb.module_api import MULTI_RANK_MODE, ReportConfig
from tldb.ondemand import (
    FOLDER,
    SENT,
    CachedRender,
    Located,
    OnDemandReport,
    ServedReport,
    cached_file,
    content_type,
    render_cached,
)
from tldb.parallel import cpu_count
from tldb.rankfiles import discover
from tldb.serve_logs import default_db


@dataclass
class LoadedRanks:
    """A rank folder's databases (by rank), what each inherits, and the combined database."""

    dbs: dict[int, Path]
    inherited: dict[int, dict[int, str]]
    combined: Path


def is_rank_folder(path: Path) -> bool:
    """A folder of rank logs (tldb serve takes a folder of databases as before)."""
    if not path.is_dir() or any(path.rglob("*.db")):
        return False
    try:
        discover(path)
    except TldbError:
        return False
    return True


def load_rank_folder(folder: Path, config: ReportConfig, verbose: bool) -> LoadedRanks:
    """Load (or reuse) every rank of `folder` into the cache folder and combine them."""
    from tldb.multirank import COMBINED_DB, current_records, inherited_strings, load_ranks
    from tldb.report import print_summary

    ranks = discover(folder)
    work = default_db(folder.resolve()).parent
    print(f"{folder}: rank databases in {work}", file=sys.stderr)
    keys = {log.rank: rankstep.step_key(log.path, config, None, []) for log in ranks.logs}
    current = current_records(ranks, work, keys)
    jobs = cpu_count()
    with rank_executor(jobs) as executor:
        dbs, records = load_ranks(ranks, work, executor, keys, jobs, current)
    for log in ranks.logs:
        print(f"rank {log.rank}:", file=sys.stderr)
        print_summary(records[log.rank]["summary"], verbose)
    combined = work / COMBINED_DB
    combine(sorted(dbs.items()), combined)
    return LoadedRanks(dbs, inherited_strings(ranks, records), combined)


def render_rank_pages(out: Path, loaded: LoadedRanks, config: ReportConfig, jobs: int) -> None:
    """Every rank's cached pages, then the landing page and cross-rank files (chromium events
    from the ranks' databases: their own chromium_events.json is made on request), laid out
    as in the static report. The landing page names the combined database when it lies inside the
    report (ranks.db), so it is linked there (copied if it cannot be)."""
    from tldb.multirank import COMBINED_DB, render_landing
    from tldb.registry import ModuleRegistry

    inside = out / COMBINED_DB
    try:
        os.link(loaded.combined, inside)
    except OSError:
        shutil.copyfile(loaded.combined, inside)
    for rank, db_path in sorted(loaded.dbs.items()):
        render_cached(db_path, out / f"rank_{rank}", config, jobs, loaded.inherited[rank])
    registry = ModuleRegistry.installed()
    landing_modules = registry.for_mode(MULTI_RANK_MODE)
    render_landing(inside, out, config, registry, landing_modules, dict(loaded.dbs))


class RankReports(ServedReport):
    """The report of a rank folder, answering like OnDemandReport (see tldb/serve.py)."""

    def __init__(self, loaded: LoadedRanks, config: ReportConfig):
        self.ranks = {
            rank: OnDemandReport(db, config, loaded.inherited[rank])
            for rank, db in loaded.dbs.items()
        }
        self.jobs = cpu_count()
        self.cache = CachedRender(lambda out: render_rank_pages(out, loaded, config, self.jobs))

    def close(self) -> None:
        super().close()
        for report in self.ranks.values():
            report.close()

    async def locate(self, wanted: str, send) -> Located:
        head, _, rest = wanted.partition("/")
        rank = head[len("rank_") :] if head.startswith("rank_") else ""
        report = self.ranks.get(int(rank)) if rank.isdigit() and str(int(rank)) == rank else None
        if report is not None:
            if not rest:
                return FOLDER
            if await report.send(rest, send, content_type(rest)):
                return SENT
            if rest in report.folders:
                return FOLDER
        return await cached_file(self.cache, wanted)
