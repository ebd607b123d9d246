"""Whole-run `tldb diff A B`: what changed between two torch.compile runs.

Compiles are matched by frame (code object name, file, first line) and by their order within
the frame: the second compile of `step` in A is compared with the second compile of `step` in
B, whatever their compile ids (which shift as soon as one frame more or less compiles). On the
matched compiles, guards, graph inputs (static or dynamic) and graphs/output code are compared;
graph breaks, recompiles, failures, cache outcomes and compile time are compared run-wide.
Compile time is noisy, so a phase is reported only when it moved by at least `min_seconds`
AND `min_ratio` of its old value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tldb import db as dbmod
from tldb.errors import InputError
from tldb.runfacts import Compile, RunFacts, frame_text, hit_rate, read_facts
from tldb.runs import Run, only_log

#: Defaults of the compile-time noise threshold (seconds, and fraction of the old value).
MIN_SECONDS = 0.5
MIN_RATIO = 0.1


@dataclass
class Threshold:
    """Below both of these, a compile time change is noise, not a regression."""

    min_seconds: float = MIN_SECONDS
    min_ratio: float = MIN_RATIO


@dataclass
class CountChange:
    """Something counted in both runs (a graph break, a failure) whose count differs."""

    key: list[str]
    a: int
    b: int

    @property
    def status(self) -> str:
        return "new" if not self.a else "fixed" if not self.b else "changed"


@dataclass
class RecompileChange:
    frame: str
    a: int
    b: int
    reasons_added: list[str]
    reasons_removed: list[str]


@dataclass
class CompileChange:
    """A matched pair of compiles (same frame, same place in it) that differs."""

    frame: str
    index: int
    id_a: str
    id_b: str
    guards_added: list[str] = field(default_factory=list)
    guards_removed: list[str] = field(default_factory=list)
    became_dynamic: list[str] = field(default_factory=list)
    became_static: list[str] = field(default_factory=list)
    outputs_changed: list[str] = field(default_factory=list)
    status_a: str = ""
    status_b: str = ""

    def empty(self) -> bool:
        return not (
            self.guards_added
            or self.guards_removed
            or self.became_dynamic
            or self.became_static
            or self.outputs_changed
            or self.status_a != self.status_b
        )


@dataclass
class CacheChange:
    cache: str
    a: dict[str, int]
    b: dict[str, int]
    hit_rate_a: float | None
    hit_rate_b: float | None


@dataclass
class PhaseChange:
    phase: str
    a: float
    b: float

    @property
    def delta(self) -> float:
        return self.b - self.a

    @property
    def ratio(self) -> float | None:
        return self.delta / self.a if self.a else None


@dataclass
class RunDiff:
    """Every difference between run A and run B; empty when they did the same things."""

    compiles_added: list[str] = field(default_factory=list)  # "frame #n [id]"
    compiles_removed: list[str] = field(default_factory=list)
    graph_breaks: list[CountChange] = field(default_factory=list)
    recompiles: list[RecompileChange] = field(default_factory=list)
    failures: list[CountChange] = field(default_factory=list)
    compiles_changed: list[CompileChange] = field(default_factory=list)
    caches: list[CacheChange] = field(default_factory=list)
    phases: list[PhaseChange] = field(default_factory=list)

    def empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)

    def categories(self) -> set[str]:
        """Which kinds of change there are (the non-empty sections, guards and inputs apart)."""
        found = {name for name in self.__dataclass_fields__ if getattr(self, name)}
        found.discard("compiles_changed")
        for c in self.compiles_changed:
            for part in ("guards_added", "guards_removed", "became_dynamic", "became_static"):
                if getattr(c, part):
                    found.add(part)
            if c.outputs_changed:
                found.add("outputs_changed")
            if c.status_a != c.status_b:
                found.add("status_changed")
        return found

    def to_json(self) -> dict:
        data = asdict(self)
        for change, item in zip(
            self.graph_breaks + self.failures, data["graph_breaks"] + data["failures"], strict=True
        ):
            item["status"] = change.status
        for change, item in zip(self.phases, data["phases"], strict=True):
            item["delta"] = change.delta
            item["ratio"] = change.ratio
        return data


def _compile_label(c: Compile) -> str:
    return f"{frame_text(c.frame)} #{c.index + 1} {c.compile_id}"


def _counted(a: Counter, b: Counter) -> list[CountChange]:
    keys = sorted(set(a) | set(b), key=lambda k: tuple(map(str, k)))
    return [CountChange(list(map(str, k)), a[k], b[k]) for k in keys if a[k] != b[k]]


def _compare_compile(a: Compile, b: Compile) -> CompileChange:
    change = CompileChange(frame_text(a.frame), a.index, a.compile_id, b.compile_id)
    change.guards_added = sorted(f"{t}: {c}" for t, c in b.guards - a.guards)
    change.guards_removed = sorted(f"{t}: {c}" for t, c in a.guards - b.guards)
    for name in sorted(set(a.inputs) & set(b.inputs)):
        if b.inputs[name] and not a.inputs[name]:
            change.became_dynamic.append(name)
        elif a.inputs[name] and not b.inputs[name]:
            change.became_static.append(name)
    # Only graphs both runs logged: a cache hit skips logging some graphs, which is the
    # cache's change (reported with the caches), not a change of the graph.
    change.outputs_changed = sorted(
        name for name in set(a.outputs) & set(b.outputs) if a.outputs[name] != b.outputs[name]
    )
    if a.status != b.status:
        change.status_a, change.status_b = a.status, b.status
    return change


def _phases(a: RunFacts, b: RunFacts, threshold: Threshold) -> list[PhaseChange]:
    changes = []
    for phase in sorted(set(a.phases) | set(b.phases)):
        change = PhaseChange(phase, a.phases.get(phase, 0.0), b.phases.get(phase, 0.0))
        ratio = abs(change.ratio) if change.ratio is not None else float("inf")
        if abs(change.delta) >= threshold.min_seconds and ratio >= threshold.min_ratio:
            changes.append(change)
    # regressions first, biggest absolute change first, then biggest relative change
    changes.sort(key=lambda c: (c.delta < 0, -abs(c.delta), -abs(c.ratio or 0)))
    return changes


def diff_runs(a: RunFacts, b: RunFacts, threshold: Threshold | None = None) -> RunDiff:
    """Compare run A (before) with run B (after)."""
    threshold = threshold or Threshold()
    result = RunDiff()
    frames_a, frames_b = a.frames(), b.frames()
    for frame in list(frames_a) + [f for f in frames_b if f not in frames_a]:
        in_a, in_b = frames_a.get(frame, []), frames_b.get(frame, [])
        for ca, cb in zip(in_a, in_b, strict=False):
            change = _compare_compile(ca, cb)
            if not change.empty():
                result.compiles_changed.append(change)
        result.compiles_removed += [_compile_label(c) for c in in_a[len(in_b) :]]
        result.compiles_added += [_compile_label(c) for c in in_b[len(in_a) :]]
    result.graph_breaks = _counted(a.graph_breaks, b.graph_breaks)
    result.failures = _counted(a.failures, b.failures)
    for frame in sorted(set(a.recompiles) | set(b.recompiles), key=lambda f: tuple(map(str, f))):
        ra, rb = a.recompiles.get(frame, Counter()), b.recompiles.get(frame, Counter())
        if ra != rb:
            result.recompiles.append(
                RecompileChange(
                    frame_text(frame),
                    sum(ra.values()),
                    sum(rb.values()),
                    sorted((rb - ra).elements()),
                    sorted((ra - rb).elements()),
                )
            )
    for cache in sorted(set(a.caches) | set(b.caches)):
        ca, cb = a.caches.get(cache, Counter()), b.caches.get(cache, Counter())
        if ca != cb:
            result.caches.append(CacheChange(cache, dict(ca), dict(cb), hit_rate(ca), hit_rate(cb)))
    result.phases = _phases(a, b, threshold)
    return result


@dataclass
class RankDiff:
    """The diff of one rank (None: a single-rank run), with the databases it was read from."""

    rank: int | None
    diff: RunDiff
    db_a: Path
    db_b: Path
    log_a: int
    log_b: int


@dataclass
class MultiDiff:
    """A run diff over every rank both runs have, and the ranks only one of them has."""

    label_a: str
    label_b: str
    ranks: list[RankDiff]
    only_a: list[int] = field(default_factory=list)
    only_b: list[int] = field(default_factory=list)
    threshold: Threshold = field(default_factory=Threshold)
    persistent: bool = False  # both runs are databases on disk (commands can name them)

    @property
    def multi_rank(self) -> bool:
        return any(r.rank is not None for r in self.ranks) or bool(self.only_a or self.only_b)

    def changed_ranks(self) -> list[int | None]:
        return [r.rank for r in self.ranks if not r.diff.empty()]

    def empty(self) -> bool:
        return not (self.changed_ranks() or self.only_a or self.only_b)

    def to_json(self) -> dict:
        data: dict = {
            "a": self.label_a,
            "b": self.label_b,
            "threshold": asdict(self.threshold),
            "empty": self.empty(),
        }
        if not self.multi_rank:
            data.update(self.ranks[0].diff.to_json())
            return data
        data["changed_ranks"] = self.changed_ranks()
        data["only_in_a"] = self.only_a
        data["only_in_b"] = self.only_b
        data["ranks"] = {str(r.rank): r.diff.to_json() for r in self.ranks}
        return data


def facts_of(db_path: Path) -> tuple[RunFacts, int]:
    """The facts of the one log of a database, and its log id."""
    database = dbmod.open_readonly(db_path)
    try:
        log_id = only_log(database.conn, db_path)
        return read_facts(database.conn, log_id), log_id
    finally:
        database.conn.close()


def compare_runs(a: Run, b: Run, threshold: Threshold | None = None) -> MultiDiff:
    """Diff two opened runs: rank by rank when both are multi-rank, else their one rank each."""
    threshold = threshold or Threshold()
    if a.multi_rank != b.multi_rank:
        raise InputError(
            f"cannot compare a multi-rank run with a single-rank one ({a.label}, {b.label})"
        )
    result = MultiDiff(a.label, b.label, [], threshold=threshold)
    result.persistent = a.persistent and b.persistent
    result.only_a = sorted(r for r in a.databases if r not in b.databases)
    result.only_b = sorted(r for r in b.databases if r not in a.databases)
    for rank in sorted((r for r in a.databases if r in b.databases), key=lambda r: r or 0):
        facts_a, log_a = facts_of(a.databases[rank])
        facts_b, log_b = facts_of(b.databases[rank])
        diff = diff_runs(facts_a, facts_b, threshold)
        result.ranks.append(
            RankDiff(rank, diff, a.databases[rank], b.databases[rank], log_a, log_b)
        )
    return result
