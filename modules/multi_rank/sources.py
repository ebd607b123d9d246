"""Reading the artifacts the multi-rank analyses need, from the combined database.

tlparse finds them by listing each rank folder's sub-folders on disk. tldb asks SQL for the
same files (the central output plan knows every path) and reads the payloads they were written
from. Where a folder holds several files of a kind, tlparse takes the first or the last its
listing shows (an order set by the file system); tldb always takes the latest written (the
highest number), and visits folders in name order. Malformed files are reported as `Problem`s
instead of aborting the report.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tldb import jsonfmt
from tldb.module_api import ModuleContext

RUNTIME_PREFIX = "inductor_runtime_and_tensor_meta"
SCHEDULE_PREFIX = "inductor_collective_schedule"
CODE_PREFIX = "inductor_output_code"
_CACHE_PRIORITY = {"❌": 3, "✅": 2, "❓": 1}


@dataclass(frozen=True)
class Problem:
    """An artifact tlparse would have aborted the whole report on."""

    rank: int
    graph: str
    artifact: str
    reason: str


@dataclass(frozen=True)
class FolderFile:
    rank: int
    folder: str
    path: str
    payload: str


def _direct_files(ctx: ModuleContext, prefix: str, json_only: bool) -> Iterator[FolderFile]:
    """Files named prefix* directly inside a folder of a rank report (by rank, folder, number)."""
    plain = ctx.config.plain_text
    for row in ctx.query("folder_files", prefix=prefix):
        path = row["path_plain"] if plain and row["path_plain"] else row["path"]
        folder, _, leaf = path.partition("/")
        if "/" in leaf or not leaf.startswith(prefix):
            continue
        if json_only and not leaf.endswith(".json"):
            continue
        yield FolderFile(row["rank"], folder, path, row["payload"] or "")


def _latest_per_folder(files: Iterator[FolderFile]) -> Iterator[FolderFile]:
    for _, group in itertools.groupby(files, key=lambda f: (f.rank, f.folder)):
        *_, latest = group
        yield latest


def _load(payload: str) -> Any:
    return jsonfmt.loads_like_serde(payload)


def parse_runtime(value: Any) -> list[tuple[str, float]]:
    """The ops of an inductor_runtime_and_tensor_meta file; ValueError if malformed."""
    ops = value.get("ops") if isinstance(value, dict) else None
    if not isinstance(ops, list):
        raise ValueError("no `ops` list")
    parsed = []
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("name"), str):
            raise ValueError("an op without a string `name`")
        ns = op.get("estimated_runtime_ns")
        if isinstance(ns, bool) or not isinstance(ns, int | float):
            raise ValueError(f"op {op['name']!r} has no numeric `estimated_runtime_ns`")
        parsed.append((op["name"], float(ns)))
    return parsed


@dataclass(frozen=True)
class RuntimeGraph:
    rank: int
    graph: str
    ops: list[tuple[str, float]]  # empty when the file is unreadable or has no ops
    fingerprint: str | None  # digest of the whole file as compact sorted JSON


def runtime_graphs(ctx: ModuleContext, problems: list[Problem] | None) -> Iterator[RuntimeGraph]:
    """Each rank folder's latest runtime-estimate file, parsed."""
    for f in _latest_per_folder(_direct_files(ctx, RUNTIME_PREFIX, True)):
        try:
            value = _load(f.payload)
        except ValueError:
            if problems is not None:
                problems.append(Problem(f.rank, f.folder, f.path, "not valid JSON"))
            yield RuntimeGraph(f.rank, f.folder, [], None)
            continue
        digest = hashlib.sha1(jsonfmt.dumps_compact(value).encode(), usedforsecurity=False)
        try:
            ops = parse_runtime(value)
        except ValueError as exc:
            if problems is not None:
                problems.append(Problem(f.rank, f.folder, f.path, str(exc)))
            ops = []
        yield RuntimeGraph(f.rank, f.folder, ops, digest.hexdigest())


def _parse_schedule(payload: str) -> list[str]:
    value = _load(payload)
    if not isinstance(value, list) or not all(isinstance(op, str) for op in value):
        raise ValueError("not a JSON list of strings")
    return value


def schedules(
    ctx: ModuleContext, problems: list[Problem] | None
) -> Iterator[tuple[int, str, list[str]]]:
    """(rank, folder, ops) of each folder's latest collective schedule; unreadable ones: []."""
    for f in _latest_per_folder(_direct_files(ctx, SCHEDULE_PREFIX, True)):
        try:
            ops = _parse_schedule(f.payload)
        except ValueError as exc:
            if problems is not None:
                problems.append(Problem(f.rank, f.folder, f.path, str(exc)))
            ops = []
        yield f.rank, f.folder, ops


def output_codes(ctx: ModuleContext) -> Iterator[FolderFile]:
    """Each folder's latest output-code file (any extension), with the code it holds."""
    return _latest_per_folder(_direct_files(ctx, CODE_PREFIX, False))


def execution_orders(ctx: ModuleContext) -> dict[int, list[str]]:
    """Per rank, the graph execution order of its latest `*graph_execution*.json` entry."""
    latest: dict[int, dict] = {}
    for row in ctx.query("graph_execution"):
        leaf = row["name"].rpartition("/")[2]
        if "graph_execution" in leaf and leaf.endswith(".json"):
            latest[row["rank"]] = row
    orders = {}
    for rank, row in latest.items():
        if row["kind"] not in ("reformat", "payload"):
            continue  # a link or a generated page: not the recorded JSON
        try:
            value = _load(row["payload"] or "")
        except ValueError:
            continue
        items = value.get("graph_execution_order") if isinstance(value, dict) else None
        if not isinstance(items, list):
            continue
        order = []
        for item in items:
            cid = item.get("compile_id") if isinstance(item, dict) else item
            if isinstance(cid, str):
                order.append(f"[{cid}]")
        orders[rank] = order
    return orders


def folder_cache_status(ctx: ModuleContext) -> dict[int, dict[str, str]]:
    """Per rank and folder, the strongest cache icon among the folder's files (miss over hit
    over bypass)."""
    cache: dict[int, dict[str, str]] = {}
    for row in ctx.query("entries"):
        path, suffix = row["path"], row["suffix"]
        if path and suffix and "/" in path:
            folder, _, leaf = path.partition("/")
            statuses = cache.setdefault(row["rank"], {})
            if "/" not in leaf and _CACHE_PRIORITY[suffix] > _CACHE_PRIORITY.get(
                statuses.get(folder, ""), 0
            ):
                statuses[folder] = suffix
    return cache


def folder_compile_ids(
    ctx: ModuleContext, wanted: dict[int, set[str]]
) -> dict[int, dict[str, str]]:
    """For the wanted folders of each rank, the compile id tlparse maps the folder to: the first
    compile id, in sorted order, with an entry whose URL starts with the folder's name."""
    found: dict[int, dict[str, str]] = {}
    for row in ctx.query("entries"):
        folders = wanted.get(row["rank"])
        if not folders:
            continue
        head = row["url"].partition("/")[0]
        for end in range(1, len(head) + 1):
            folder = head[:end]
            if folder in folders:
                known = found.setdefault(row["rank"], {})
                if folder not in known or row["compile_id"] < known[folder]:
                    known[folder] = row["compile_id"]
    return found
