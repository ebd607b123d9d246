"""The pairs of real torch 2.13 runs under tests/data/torch213/pairs (generate_traces.py,
pair_runs), and what their logs say, read with plain json (tests/torch213_log.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from conftest import data_path
from torch213_log import envelopes

from tldb.loader import build_database

PAIRS = {
    "graph_break": ("graph_break_before", "graph_break_after"),
    "recompile": ("recompile_before", "recompile_after"),
    "guard": ("guard_before", "guard_after"),
    "dynamic": ("dynamic_before", "dynamic_after"),
    "cache": ("cache_cold", "cache_warm"),
}
LOGS = [name for pair in PAIRS.values() for name in pair]


def build_databases(folder: Path) -> dict[str, Path]:
    """One database per pair log (the CLI reads databases like logs, without reloading)."""
    paths = {}
    for name in LOGS:
        paths[name] = folder / f"{name}.db"
        build_database([data_path(f"torch213/pairs/{name}.log")], paths[name])
    return paths


def artifacts(log: str, name: str) -> list[str]:
    """Payloads of a log's artifacts of one name."""
    return [
        payload
        for kind, meta, payload in envelopes(f"pairs/{log}")
        if kind == "artifact" and meta["artifact"]["name"] == name
    ]


def frames(log: str) -> Counter:
    """Compiled frames of a log (code object names of compilation_metrics), with counts."""
    return Counter(
        meta["compilation_metrics"]["co_name"]
        for kind, meta, _ in envelopes(f"pairs/{log}")
        if kind == "compilation_metrics"
    )


def cache_outcomes(log: str) -> dict[str, Counter]:
    """Outcomes (hit, miss, bypass) per cache, from the names of the log's cache artifacts."""
    found: dict[str, Counter] = {}
    for kind, meta, _ in envelopes(f"pairs/{log}"):
        name = meta.get("artifact", {}).get("name", "") if kind == "artifact" else ""
        for cache, prefix in (
            ("fx_graph", "fx_graph_cache_"),
            ("aotautograd", "aotautograd_cache_"),
        ):
            if name.startswith(prefix):
                found.setdefault(cache, Counter())[name.removeprefix(prefix)] += 1
    return found


def compile_seconds(log: str) -> float:
    """Total of entire_frame_compile_time_s over a log's compilation_metrics."""
    return sum(
        meta["compilation_metrics"].get("entire_frame_compile_time_s") or 0.0
        for kind, meta, _ in envelopes(f"pairs/{log}")
        if kind == "compilation_metrics"
    )
