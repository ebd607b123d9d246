"""One rank's step of a multi-rank report (load, then render), runnable anywhere, recorded.

A step writes OUT/rank_N/trace.db (load) and the rank's report pages (render). When a part is
done, the step records it in OUT/rank_N/.tldb-step.json, written last and atomically; the
record is removed first when a step starts again. So a rank folder with a record that matches
the current run is complete and can be reused: after a crash, by a later run, or when a batch
system (a SLURM array running `tldb report DIR -o OUT --all-ranks-html --only-ranks I`) has
prepared the ranks and one last command writes the landing page.

What makes a record match (`step_key`): the log (path, size, modification time), tldb's version
and schema, and every option that changes a rank's pages. A render also depends on the string
table tlparse leaks from the ranks listed before this one (see multirank.py), so the record
keeps a digest of the inherited table and a rank is re-rendered (not re-loaded) when it changed.

The functions here are what the executors run: plain module-level functions of picklable
arguments, so they run in a forked worker and on a Dask worker alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

import orjson
import sqlite_utils

from tldb import __version__
from tldb import db as dbmod
from tldb.executors import give_back_memory
from tldb.loader import build_database
from tldb.module_api import ReportConfig
from tldb.rankfiles import RankLog
from tldb.registry import ModuleRegistry
from tldb.report import DB_NAME, load_summary, render_report

RECORD = ".tldb-step.json"


def step_key(
    log: Path, config: ReportConfig, modules: list[str] | None, module_paths: list[Path]
) -> dict:
    """Everything a rank's database and pages depend on, as JSON-able values."""
    return _key(log, _run_options(config, modules, module_paths))


def step_keys(
    logs: Iterable[RankLog],
    config: ReportConfig,
    modules: list[str] | None,
    module_paths: list[Path],
) -> dict[int, dict]:
    """The step_key of every rank, by rank. The options are the same for every rank, so the
    keys share one dict of them (not one each: about 1 KB a rank, which the process driving a
    many-rank run holds until it ends)."""
    shared = _run_options(config, modules, module_paths)
    return {log.rank: _key(log.path, shared) for log in logs}


def _run_options(config: ReportConfig, modules: list[str] | None, module_paths: list[Path]) -> dict:
    return {
        "options": {k: v for k, v in dataclasses.asdict(config).items() if k != "verbose"},
        "modules": modules,
        "module_paths": [str(p.resolve()) for p in module_paths],
    }


def _key(log: Path, shared: dict) -> dict:
    stat = log.stat()
    return {
        "tldb": __version__,
        "schema": dbmod.SCHEMA_VERSION,
        "log": str(log.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        **shared,
    }


def inherited_digest(inherited: dict[int, str]) -> str:
    return hashlib.sha256(orjson.dumps(sorted(inherited.items()))).hexdigest()


def read_record(rank_dir: Path) -> dict | None:
    """The rank folder's step record, or None when absent or unreadable (an incomplete step)."""
    try:
        record = orjson.loads((rank_dir / RECORD).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _write_record(rank_dir: Path, record: dict) -> None:
    """Written in place, not renamed: a record cut short is not valid JSON, which reads as
    "incomplete" (a rename costs ~5 ms on some file systems, twice per rank)."""
    (rank_dir / RECORD).write_bytes(orjson.dumps(record))


def _forget(rank_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (rank_dir / RECORD).unlink()


def current_record(rank_dir: Path, key: dict) -> dict | None:
    """The rank folder's step record when its load belongs to this run (same key, database
    there, a load summary), else None: read once per rank and run, `rendered` reads it too."""
    record = read_record(rank_dir)
    if not record or record.get("key") != key or not (rank_dir / DB_NAME).is_file():
        return None
    return record if isinstance(record.get("summary"), dict) else None


def rendered(record: dict, inherited: dict[int, str]) -> dict | None:
    """The render part of a current record (see current_record) when it was rendered with
    this inherited string table, else None."""
    render = record.get("render")
    if not isinstance(render, dict) or render.get("inherited") != inherited_digest(inherited):
        return None
    return render


def load_step(log: Path, rank_dir: Path, key: dict, pipelined: bool) -> dict:
    """Load one rank log into rank_dir/trace.db and record it (no render yet); returns the
    record as the driver keeps it (for_driver), whose `summary` holds tlparse's end-of-parse
    facts (report.load_summary) and the rank's string table, which the caller needs for every
    rank and would otherwise reopen each database for."""
    rank_dir.mkdir(parents=True, exist_ok=True)
    _forget(rank_dir)
    _clear_pages(rank_dir)  # pages of an older log or an interrupted step
    summary: dict = {}

    def summarize(db: sqlite_utils.Database) -> None:
        (log_id,) = db.conn.execute("SELECT id FROM logs ORDER BY id").fetchone()
        summary.update(load_summary(db, log_id))
        summary["strings"] = db.conn.execute(
            "SELECT idx, value FROM strings WHERE log_id = ? ORDER BY idx", [log_id]
        ).fetchall()

    build_database([log], rank_dir / DB_NAME, pipelined=pipelined, after=summarize)
    record = {"key": key, "summary": summary, "render": None}
    _write_record(rank_dir, record)
    return for_driver(record)


def for_driver(record: dict) -> dict:
    """What the process driving a many-rank run keeps of a rank's step record until the end:
    the summary and the render part, without the key (the driver has it) and with the string
    table as one JSON text (decoded once, by multirank.inherited_strings). As lists of Python
    objects, those two were about 8 KB a rank: 8 MB more in the driver at 1,024 ranks."""
    summary = dict(record["summary"])
    strings = summary.get("strings")
    if not isinstance(strings, bytes):
        summary["strings"] = orjson.dumps(strings if isinstance(strings, list) else [])
    return {"summary": summary, "render": record.get("render")}


@functools.cache
def _registry(module_paths: tuple[Path, ...]) -> ModuleRegistry:
    """One module discovery per worker process, not one per rank."""
    return ModuleRegistry.discover(module_paths)


def _clear_pages(rank_dir: Path) -> None:
    """Remove a previous render's files (a rank re-rendered keeps only its database)."""
    for child in rank_dir.iterdir():
        if child.name in (DB_NAME, RECORD):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def shadow_strings(db: sqlite_utils.Database, log_id: int, inherited: dict[int, str]) -> None:
    """Add the string table entries earlier ranks left behind (see tldb/multirank.py) to
    this connection's view of `strings`; the database file is untouched."""
    if inherited:
        db.conn.execute("CREATE TEMP TABLE strings AS SELECT * FROM main.strings")
        db.conn.executemany(
            "INSERT INTO temp.strings (log_id, idx, value, line) VALUES (?, ?, ?, 0)",
            [(log_id, idx, value) for idx, value in sorted(inherited.items())],
        )


def render_step(
    rank_dir: Path,
    key: dict,
    config: ReportConfig,
    modules: list[str] | None,
    module_paths: list[Path],
    inherited: dict[int, str],
) -> dict:
    """Render one loaded rank into rank_dir and record it; returns the render record (files,
    bytes, whether the compile directory has an unknown compile id)."""
    record = read_record(rank_dir)
    if not record or record.get("key") != key:
        raise FileNotFoundError(f"{rank_dir} holds no loaded database for this run")
    if record.get("render") is not None:  # a previous render's pages are about to go
        _write_record(rank_dir, {**record, "render": None})
        _clear_pages(rank_dir)
    registry = _registry(tuple(module_paths))
    chosen = registry.for_mode(config.mode, modules)
    db = dbmod.open_readonly(rank_dir / DB_NAME)
    try:
        (log_id,) = db.conn.execute("SELECT id FROM logs ORDER BY id").fetchone()
        shadow_strings(db, log_id, inherited)
        site, directory = render_report(db, log_id, rank_dir, config, registry, chosen)
    finally:
        db.conn.close()
    render = {
        "inherited": inherited_digest(inherited),
        "files": site.files,
        "bytes": site.bytes,
        "unknown_compile_id": "unknown" in directory,
    }
    _write_record(rank_dir, {**record, "render": render})
    # A worker renders rank after rank: without this its resident size creeps up with the
    # allocator's high-water marks (about 4 MB over 512 ranks).
    give_back_memory(collect=False)
    return render
