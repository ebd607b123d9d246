"""The facts of one run that runs are compared and checked on, read from a tldb database.

Everything comes from the views of sql/views.sql and sql/kinds.sql (compiles, metrics,
graph_breaks, recompiles, failures, guards, cache_events, graphs, output_code), never from the
raw log, so a log, a database and a report folder give the same facts. Keys that identify a
thing across runs leave out what changes from run to run without meaning anything: compile id
numbers (frames are named by code object name, file and first line), the `0/0:` prefix of
recompile reasons, the source comments torch appends to guards and the object addresses in
ID_MATCH/TYPE_MATCH guards.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tldb.diff import GRAPH_KINDS  # the graphs the per-compile diff shows in full

#: A compiled frame across runs: code object name, file, first line.
FrameKey = tuple[str, str, int]

#: Compile time phases: name, metrics view column, factor to seconds. "total" is the time
#: Dynamo reports for the whole frame (every other phase is part of it).
PHASES = (
    ("total", "entire_frame_compile_time_s", 1.0),
    ("dynamo", "dynamo_cumulative_compile_time_us", 1e-6),
    ("aot_autograd", "aot_autograd_cumulative_compile_time_us", 1e-6),
    ("inductor", "inductor_cumulative_compile_time_us", 1e-6),
    ("inductor_code_gen", "inductor_code_gen_cumulative_compile_time_us", 1e-6),
    ("backward", "backward_cumulative_compile_time_us", 1e-6),
    ("pre_grad_passes", "pre_grad_pass_time_us", 1e-6),
    ("joint_graph_passes", "joint_graph_pass_time_us", 1e-6),
    ("post_grad_passes", "post_grad_pass_time_us", 1e-6),
    ("autotune", "compile_time_autotune_time_us", 1e-6),
)
_RECOMPILE_PREFIX = re.compile(r"^\s*\d+/\d+:\s*")
_GUARD_COMMENT = re.compile(r"\s+#\s.*$")
#: Object and type ids in ID_MATCH/TYPE_MATCH guards are addresses of one process.
_OBJECT_ID = re.compile(r"(___check_(?:obj|type)_id\(.*?, )\d+")
_FORWARD = re.compile(r"def forward\(self,?\s*(.*)\):")
_ARG = re.compile(r'(\w+): "([^"]*)"')
_SYMBOL = re.compile(r"\b[su]\d+\b")
_SPACES = re.compile(r"\s+")


@dataclass(eq=False)
class Compile:
    """One compile of a frame (all its attempts: a restart is the same compile). Compared by
    identity: two compiles are never equal just because their fields are."""

    frame: FrameKey
    index: int  # its place among the compiles of its frame, from 0
    compile_id: str  # the first attempt's label, e.g. [0/1]
    status: str  # the last attempt's status (ok, break, empty, error, missing)
    duration_s: float
    guards: frozenset[tuple[str, str]] = frozenset()
    inputs: dict[str, bool] = field(default_factory=dict)  # graph input -> dynamic?
    outputs: dict[str, str] = field(default_factory=dict)  # graph or code name -> digest


@dataclass
class RunFacts:
    """What one log (one rank) of a run did, keyed for comparison."""

    compiles: list[Compile] = field(default_factory=list)
    graph_breaks: Counter = field(default_factory=Counter)  # (reason, location) -> count
    recompiles: dict[FrameKey, Counter] = field(default_factory=dict)  # frame -> reasons
    failures: Counter = field(default_factory=Counter)  # (type, reason, user frame) -> count
    caches: dict[str, Counter] = field(default_factory=dict)  # cache -> outcome -> count
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    torch_version: str | None = None
    started_us: float | None = None  # first chromium event (µs since the epoch)

    def frames(self) -> dict[FrameKey, list[Compile]]:
        grouped: dict[FrameKey, list[Compile]] = defaultdict(list)
        for c in self.compiles:
            grouped[c.frame].append(c)
        return grouped

    @property
    def compile_seconds(self) -> float:
        return self.phases.get("total", 0.0)

    def cache_total(self, outcome: str) -> int:
        return sum(counts[outcome] for counts in self.caches.values())


def frame_text(frame: FrameKey) -> str:
    """`step (model.py:6)`: a frame as people read it."""
    name, filename, line = frame
    short = filename.rsplit("/", 1)[-1] if filename else "?"
    return f"{name} ({short}:{line})"


def hit_rate(counts: Counter) -> float | None:
    """Hits over lookups (hits, misses and bypasses); None without lookups."""
    total = counts["hit"] + counts["miss"] + counts["bypass"]
    return counts["hit"] / total if total else None


def _digest(text: str | None) -> str:
    return hashlib.sha1((text or "").encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _guard_code(code: str | None) -> str:
    return _OBJECT_ID.sub(r"\1<id>", _GUARD_COMMENT.sub("", code or "")).strip()


def graph_inputs(graph: str | None) -> dict[str, bool]:
    """The inputs of Dynamo's output graph, each with whether its shape is symbolic. Symbol
    inputs themselves (`s77: "Sym(s77)"`) are left out: they exist only when something is
    dynamic, and the tensor whose size they are says so already."""
    found = _FORWARD.search(graph or "")
    if not found:
        return {}
    return {
        name: bool(_SYMBOL.search(kind))
        for name, kind in _ARG.findall(found.group(1))
        if not kind.startswith("Sym(")
    }


def _attempt_base(compile_id: str) -> str:
    """[0/1_2] -> [0/1]: the attempts of a compile (restarts) share it."""
    return re.sub(r"_\d+\]$", "]", compile_id)


def _compiles(conn: sqlite3.Connection, log_id: int) -> tuple[list[Compile], dict[str, Compile]]:
    rows = conn.execute(
        "SELECT compile_id, frame_id, frame_compile_id, status, co_name, co_filename, "
        "co_firstlineno, duration_s FROM compiles WHERE log_id = ? AND frame_id IS NOT NULL",
        [log_id],
    ).fetchall()
    groups: dict[str, list[tuple]] = defaultdict(list)
    order: list[str] = []
    for row in rows:
        base = _attempt_base(row[0])
        if base not in groups:
            order.append(base)
        groups[base].append(row)
    by_frame: dict[FrameKey, int] = defaultdict(int)
    compiles: list[Compile] = []
    by_id: dict[str, Compile] = {}
    for base in order:
        attempts = groups[base]
        named = next((r for r in attempts if r[4] is not None), None)
        if named is not None:
            frame = (named[4], named[5] or "", int(named[6] or 0))
        else:  # no metrics at all: only the frame number is known
            frame = (f"<frame {attempts[0][1]}>", "", 0)
        compile = Compile(
            frame=frame,
            index=by_frame[frame],
            compile_id=base,
            status=attempts[-1][3],
            duration_s=sum(r[7] or 0.0 for r in attempts),
        )
        by_frame[frame] += 1
        compiles.append(compile)
        for r in attempts:
            by_id[r[0]] = compile
    return compiles, by_id


def _per_compile(conn: sqlite3.Connection, log_id: int, by_id: dict[str, Compile]) -> None:
    guards: dict[Compile, set] = defaultdict(set)
    for compile_id, guard_type, code in conn.execute(
        "SELECT compile_id, guard_type, code FROM guards WHERE log_id = ?", [log_id]
    ):
        if compile_id in by_id:
            guards[by_id[compile_id]].add((guard_type or "", _guard_code(code)))
    for compile, found in guards.items():
        compile.guards = frozenset(found)
    kinds = ", ".join(f"'{k}'" for k in GRAPH_KINDS)
    rows = conn.execute(
        f"SELECT compile_id, coalesce(kind || ' ' || name, kind), payload FROM graphs "
        f"WHERE log_id = :log AND kind IN ({kinds}) "
        "UNION ALL SELECT compile_id, name, payload FROM artifact_envelopes "
        "WHERE log_id = :log AND name = 'inductor_post_grad_graph' "
        "UNION ALL SELECT compile_id, coalesce(kind || ' ' || name, kind), payload "
        "FROM output_code WHERE log_id = :log",
        {"log": log_id},
    ).fetchall()
    seen: Counter = Counter()
    for compile_id, name, payload in rows:
        compile = by_id.get(compile_id)
        if compile is None:
            continue
        seen[(compile, name)] += 1
        n = seen[(compile, name)]
        compile.outputs[name if n == 1 else f"{name} #{n}"] = _digest(payload)
        if name == "dynamo_output_graph" and n == 1:
            compile.inputs = graph_inputs(payload)


def _reason_key(reason: str | None) -> str:
    """A graph break or failure reason without its boilerplate, whitespace folded."""
    lines = [ln for ln in (reason or "").splitlines() if "For more details" not in ln]
    return _SPACES.sub(" ", " ".join(lines)).strip()


def read_facts(conn: sqlite3.Connection, log_id: int) -> RunFacts:
    """The facts of one log of a database."""
    facts = RunFacts()
    facts.compiles, by_id = _compiles(conn, log_id)
    _per_compile(conn, log_id, by_id)
    for location, reason in conn.execute(
        "SELECT location, reason FROM graph_breaks WHERE log_id = ?", [log_id]
    ):
        facts.graph_breaks[(_reason_key(reason), location or "")] += 1
    for compile_id, reason in conn.execute(
        "SELECT compile_id, reason FROM recompiles WHERE log_id = ?", [log_id]
    ):
        compile = by_id.get(compile_id)
        frame = compile.frame if compile else (f"<{compile_id}>", "", 0)
        for part in (reason or "").splitlines() or [""]:
            facts.recompiles.setdefault(frame, Counter())[_RECOMPILE_PREFIX.sub("", part)] += 1
    for fail_type, reason, filename, lineno in conn.execute(
        "SELECT fail_type, reason, fail_user_frame_filename, fail_user_frame_lineno "
        "FROM failures WHERE log_id = ? AND failure = 'failure'",
        [log_id],
    ):
        where = f"{filename}:{lineno}" if filename else ""
        facts.failures[(fail_type or "", _reason_key(reason), where)] += 1
    for cache, outcome, n in conn.execute(
        "SELECT cache, outcome, count(*) FROM cache_events WHERE log_id = ? GROUP BY 1, 2",
        [log_id],
    ):
        facts.caches.setdefault(cache, Counter())[outcome or "unknown"] += n
    sums = ", ".join(f"sum({column})" for _, column, _ in PHASES)
    row = conn.execute(
        f"SELECT {sums}, max(pytorch_version) FROM metrics "
        "WHERE log_id = ? AND kind = 'compilation_metrics'",
        [log_id],
    ).fetchone()
    for (phase, _, factor), value in zip(PHASES, row[:-1], strict=True):
        if value is not None:
            facts.phases[phase] = float(value) * factor
    facts.torch_version = row[-1]
    facts.started_us = conn.execute(
        "SELECT min(CAST(ts AS REAL)) FROM chromium_events WHERE log_id = ?", [log_id]
    ).fetchone()[0]
    return facts
