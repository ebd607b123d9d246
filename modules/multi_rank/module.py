"""The multi-rank landing page and cross-rank files of `--all-ranks-html`, from SQL.

Reads the combined database (one `rank` column in every table) and writes what tlparse 0.4.3
writes at the top of a multi-rank report: index.html (divergence warnings, rank links, runtime,
execution-order and tensor-metadata analyses), chromium_events.json (all ranks, pid = rank),
runtime_estimations.json, chromium_trace_with_runtime.json, collective_schedules.json and each
rank's rank_N/collectives_parity.json. Ranks are always taken in ascending order and graph
folders in name order, never in a file system's listing order.

The page must read at a thousand ranks, so beyond tlparse's text it lists every group of ranks
as ranges with a count, smallest group first, with tlparse's rank-by-rank lines folded below;
and it sums each rank's compile time to point at the ranks far from the median (see README).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tldb import jsonfmt
from tldb.module_api import MULTI_RANK_MODE, Module, ModuleContext, ModuleOutput

from . import analysis as an
from . import sources as src
from .chromium_merge import rank_fragment

PARITY_DESCRIPTION = (
    "Difference of # of collectives in scheduler and inductor output code and missing wait "
    "collectives"
)
#: Above this many ranks, the rank links are folded into blocks of this size.
RANK_BLOCK = 64


def _in_order(value: object) -> str:
    """Pretty JSON keeping the keys in the order written (tlparse's struct field order)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


@dataclass
class Landing:
    """Everything the landing page shows."""

    ranks: list[int]
    compile_divergence: bool = False
    #: Ranks grouped by their list of compile ids (tlparse only says that they differ).
    compile_groups: list[list[int]] = field(default_factory=list)
    cache_groups: list[list[int]] = field(default_factory=list)
    collective_groups: list[list[int]] = field(default_factory=list)
    has_chromium: bool = False
    has_runtime: bool = False
    has_schedules: bool = False
    runtime_rows: list[an.RuntimeRow] | None = None
    order: an.OrderSummary | None = None
    tensor_groups: list[list[int]] = field(default_factory=list)
    problems: list[src.Problem] = field(default_factory=list)
    combined_db: str | None = None
    compile_times: an.CompileTimes | None = None
    chart: an.Chart | None = None

    @property
    def tensor_divergence(self) -> bool:
        return len(self.tensor_groups) > 1

    @property
    def warnings(self) -> bool:
        return (
            self.compile_divergence
            or len(self.cache_groups) > 1
            or len(self.collective_groups) > 1
            or self.tensor_divergence
            or bool(self.problems)
        )

    @property
    def untimed_ranks(self) -> list[int]:
        """Ranks left out of the compile-time summary: no compile metrics with a duration."""
        timed = {r.rank for r in self.compile_times.ranks} if self.compile_times else set()
        return [rank for rank in self.ranks if rank not in timed]

    def rank_blocks(self) -> list[list[int]]:
        if len(self.ranks) <= RANK_BLOCK:
            return [self.ranks]
        return [self.ranks[i : i + RANK_BLOCK] for i in range(0, len(self.ranks), RANK_BLOCK)]


class MultiRank(Module):
    id = "multi_rank"
    name = "Multi-rank landing page"
    subscriptions = ("logs", "envelopes", "outputs", "payloads", "metrics")
    modes = frozenset({MULTI_RANK_MODE})
    #: Part 1 is the all-rank chromium_events.json alone (every rank's events, read and
    #: rewritten: over half the cross-rank stage), part 0 everything else, so that on two cores
    #: the landing's analyses run beside it instead of after it.
    shards = 2

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        landing = Landing([row["rank"] for row in ctx.query("ranks")])
        landing.has_chromium = any(self._chromium_fragment(ctx, r) for r in landing.ranks)
        part, parts = ctx.shard
        if parts > 1 and part == 1:
            chromium = self._chromium_file(ctx, landing.ranks) if landing.has_chromium else None
            return ModuleOutput(files=[("chromium_events.json", chromium)] if chromium else [])
        self._compile_and_cache(ctx, landing)
        self._runtime(ctx, landing)
        self._collectives(ctx, landing)
        self._execution_order(ctx, landing)
        self._compile_times(ctx, landing)
        landing.combined_db = _combined_name(ctx)
        return ModuleOutput(files=self._files(ctx, landing))

    # --- analyses -------------------------------------------------------------------------

    def _compile_and_cache(self, ctx: ModuleContext, landing: Landing) -> None:
        ids: dict[int, list[str]] = {rank: [] for rank in landing.ranks}
        for row in ctx.query("compile_ids"):
            ids[row["rank"]].append(row["compile_id"])
        first = ids[landing.ranks[0]] if landing.ranks else []
        landing.compile_divergence = any(v != first for v in ids.values())
        landing.compile_groups = an.groups({rank: tuple(v) for rank, v in ids.items()})
        icons: dict[int, list[str]] = {rank: [] for rank in landing.ranks}
        for row in ctx.query("cache_suffixes"):
            icons[row["rank"]].append(row["suffix"])
        patterns = {rank: "".join(v) for rank, v in icons.items()}
        landing.cache_groups = an.groups(patterns)

    def _runtime(self, ctx: ModuleContext, landing: Landing) -> None:
        totals: dict[int, list[tuple[str, float]]] = {}
        tensor: dict[int, list[str]] = {}
        for graph in src.runtime_graphs(ctx, landing.problems):
            if graph.fingerprint is not None:
                tensor.setdefault(graph.rank, []).append(graph.fingerprint)
            if graph.ops:
                total = 0.0
                for _, ns in graph.ops:
                    total += ns
                totals.setdefault(graph.rank, []).append((graph.graph, total))
        landing.has_runtime = bool(totals)
        landing.runtime_rows = an.runtime_rows(totals) if totals else None
        landing.tensor_groups = an.groups({r: ",".join(f) for r, f in tensor.items()})

    def _collectives(self, ctx: ModuleContext, landing: Landing) -> None:
        signatures = {rank: hashlib.sha1(usedforsecurity=False) for rank in landing.ranks}
        started: set[int] = set()
        for rank, _, ops in src.schedules(ctx, landing.problems):
            if not ops:
                continue
            landing.has_schedules = True
            for op in ops:
                signatures[rank].update(b"," if rank in started else b"")
                signatures[rank].update(op.encode())
                started.add(rank)
        if landing.has_schedules:
            landing.collective_groups = an.groups({r: h.digest() for r, h in signatures.items()})

    def _execution_order(self, ctx: ModuleContext, landing: Landing) -> None:
        orders = src.execution_orders(ctx)
        if len(orders) < 2:
            return
        by_folder: dict[int, dict[str, list[str]]] = {}
        for rank, folder, ops in src.schedules(ctx, None):
            if ops:
                by_folder.setdefault(rank, {})[folder] = ops
        cache_by_folder = src.folder_cache_status(ctx)
        wanted = {
            rank: set(by_folder.get(rank, {})) | set(cache_by_folder.get(rank, {}))
            for rank in orders
        }
        compile_ids = src.folder_compile_ids(ctx, wanted)
        schedule_by_cid: dict[int, dict[str, list[str]]] = {}
        cache_by_cid: dict[int, dict[str, str]] = {}
        for rank in orders:
            mapping = compile_ids.get(rank, {})
            for folder in sorted(wanted[rank]):
                cid = mapping.get(folder)
                if cid is None:
                    continue
                if folder in by_folder.get(rank, {}):
                    schedule_by_cid.setdefault(rank, {})[cid] = by_folder[rank][folder]
                if folder in cache_by_folder.get(rank, {}):
                    cache_by_cid.setdefault(rank, {})[cid] = cache_by_folder[rank][folder]
        rows = an.analyze_execution_order(orders, schedule_by_cid, cache_by_cid)
        landing.order = an.summarize_execution_order(rows)

    def _compile_times(self, ctx: ModuleContext, landing: Landing) -> None:
        """Which ranks took much longer (or shorter) to compile than the others: at scale, one
        slow rank holds every other rank at its first collective."""
        totals = {
            row["rank"]: (row["seconds"], row["compiles"]) for row in ctx.query("compile_times")
        }
        landing.compile_times = an.compile_times(totals)
        if landing.compile_times is not None:
            landing.chart = an.chart(landing.compile_times)

    # --- files ----------------------------------------------------------------------------

    def _files(self, ctx: ModuleContext, landing: Landing) -> Iterator[tuple[str, object]]:
        if landing.has_chromium and ctx.shard[1] == 1:  # else part 1 writes it
            yield "chromium_events.json", self._chromium_file(ctx, landing.ranks)
        if landing.has_runtime:
            yield (
                "runtime_estimations.json",
                jsonfmt.pretty_array(self._estimates(ctx), sort_keys=False),
            )
            yield (
                "chromium_trace_with_runtime.json",
                jsonfmt.pretty_array(self._runtime_trace(ctx)),
            )
        if landing.has_schedules:
            yield (
                "collective_schedules.json",
                jsonfmt.pretty_array(
                    (
                        {"rank": rank, "graph": folder, "ops": ops}
                        for rank, folder, ops in src.schedules(ctx, None)
                        if ops
                    ),
                    sort_keys=False,
                ),
            )
        yield from self._collectives_parity(ctx, landing.ranks)
        page = ctx.render(
            "landing.html", landing=landing, compact=an.compact_ranks, odd_first=an.odd_ones_first
        )
        yield "index.html", page

    def _chromium_file(self, ctx: ModuleContext, ranks: list[int]) -> Iterator[bytes]:
        """chromium_events.json, written a rank at a time (memory stays one rank's events)."""
        started = False
        for rank in ranks:
            fragment = self._chromium_fragment(ctx, rank)
            if fragment:
                yield (b",\n" if started else b"[\n") + fragment
                started = True
        yield b"\n]" if started else b"[]"

    def _chromium_fragment(self, ctx: ModuleContext, rank: int) -> bytes:
        """One rank's events as elements of the all-rank array (b"" if it has none): its own
        chromium_events.json with the pids rewritten (chromium_merge), or, where that file is
        missing or not rewritable, its events formatted from its own database (the combined
        one keeps no chromium payload texts). A rank with neither contributes nothing."""
        fragment = rank_fragment(ctx.rank_report_file(rank, "chromium_events.json"), rank)
        if fragment is not None:
            return fragment
        db = ctx.rank_database(rank)
        if db is None:
            return b""
        try:
            rows = db.conn.execute(ctx.sql("chromium_rank"))
            text = b"".join(jsonfmt.pretty_array(_with_pid(rows, rank)))
        finally:
            db.conn.close()
        return b"" if text == b"[]" else text[2:-2]

    def _estimates(self, ctx: ModuleContext) -> Iterator[dict]:
        for graph in src.runtime_graphs(ctx, None):
            if graph.ops:
                ops = [{"name": n, "estimated_runtime_ns": ns} for n, ns in graph.ops]
                yield {"rank": graph.rank, "graph": graph.graph, "ops": ops}

    def _runtime_trace(self, ctx: ModuleContext) -> Iterator[dict]:
        graphs: dict[int, list[str]] = {}
        for graph in src.runtime_graphs(ctx, None):
            if graph.ops:
                graphs.setdefault(graph.rank, []).append(graph.graph)
                yield from an.runtime_events(graph.rank, graph.graph, graph.ops)
        yield from an.runtime_metadata(graphs)

    def _collectives_parity(
        self, ctx: ModuleContext, ranks: list[int]
    ) -> Iterator[tuple[str, str]]:
        code: dict[int, dict[str, tuple]] = {}
        for f in src.output_codes(ctx):
            page = an.syntect_text(f.payload) if f.path.endswith(".html") else f.payload
            code.setdefault(f.rank, {})[f.folder] = an.code_counts(page)
        scheduled: dict[int, dict[str, list[str]]] = {}
        for rank, folder, ops in src.schedules(ctx, None):
            if folder in code.get(rank, {}):
                scheduled.setdefault(rank, {})[folder] = ops
        compile_ids = src.folder_compile_ids(ctx, {r: set(f) for r, f in scheduled.items()})
        for rank in ranks:
            graphs = []
            for folder, ops in sorted(scheduled.get(rank, {}).items()):
                counts, waits = code[rank][folder]
                offset, missing = an.parity(an.schedule_counts(ops), counts, waits)
                if offset or missing:
                    graphs.append(
                        {
                            "graph": folder,
                            "compile_id": compile_ids.get(rank, {}).get(folder, "unknown"),
                            "offset": offset,
                            "missing_waits": missing,
                        }
                    )
            report = {"description": PARITY_DESCRIPTION, "graphs": graphs}
            yield f"rank_{rank}/collectives_parity.json", _in_order(report)


def _with_pid(rows, rank: int) -> Iterator[object]:
    """Chromium events of one rank from (payload,) rows, each object's pid set to the rank."""
    for (payload,) in rows:
        try:
            event = jsonfmt.loads_like_serde(payload)
        except ValueError:
            continue  # a cut payload: tlparse skips it too
        if isinstance(event, dict):
            event["pid"] = rank
        yield event


def _combined_name(ctx: ModuleContext) -> str | None:
    """The combined database's path relative to the report, when it lies inside it."""
    for _, name, file in ctx.db.conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            try:
                return Path(file).resolve().relative_to(ctx.out_dir.resolve()).as_posix()
            except ValueError:
                return None
    return None


MODULE = MultiRank()
