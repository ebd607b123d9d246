"""Cross-rank computations of the multi-rank report, as pure functions over plain values.

Everything here is deterministic and independent of the order ranks or graphs arrive in:
callers pass ranks and graph folders sorted, and every grouping is returned sorted.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

_MASK64 = (1 << 64) - 1
_FX_SEED = 0x517CC1B727220A95


def _fx_word(state: int, word: int) -> int:
    return ((((state << 5) | (state >> 59)) & _MASK64) ^ word) * _FX_SEED & _MASK64


def runtime_tid(rank: int, graph: str) -> int:
    """The thread id tlparse gives a graph in the runtime trace: the low 32 bits of rustc's
    FxHash of the (rank, graph) tuple (a u32, then the string's bytes and a 0xff end marker)."""
    state = _fx_word(0, rank)
    data = graph.encode()
    while len(data) >= 8:
        state = _fx_word(state, int.from_bytes(data[:8], "little"))
        data = data[8:]
    if len(data) >= 4:
        state = _fx_word(state, int.from_bytes(data[:4], "little"))
        data = data[4:]
    for byte in data:
        state = _fx_word(state, byte)
    return _fx_word(state, 0xFF) & 0xFFFFFFFF


def as_u64(value: float) -> int:
    """Rust's saturating `f64 as u64`: truncate toward zero, NaN and negatives give 0."""
    if value != value or value <= 0:
        return 0
    return min(int(value), _MASK64)


def round_ms(ns: float) -> float:
    """Nanoseconds to milliseconds rounded to 3 decimals, halves away from zero (Rust's round)."""
    scaled = ns / 1e6 * 1000
    magnitude = abs(scaled)
    floor = math.floor(magnitude)
    rounded = floor + 1 if magnitude - floor >= 0.5 else floor
    return math.copysign(rounded, scaled) / 1000


def groups(signatures: dict[int, object]) -> list[list[int]]:
    """Ranks grouped by equal signature; each group ascending, groups by their first rank."""
    by_signature: dict[object, list[int]] = {}
    for rank in sorted(signatures):
        by_signature.setdefault(signatures[rank], []).append(rank)
    return sorted(by_signature.values())


# --- runtime estimates --------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeRow:
    graph: str
    delta_ms: float
    fastest_rank: int
    fastest_ms: float
    slowest_rank: int
    slowest_ms: float


def runtime_rows(totals: dict[int, list[tuple[str, float]]]) -> list[RuntimeRow] | None:
    """Per graph position, the fastest and slowest rank; None when ranks have different
    numbers of graphs. Graphs are aligned by position in each rank's (sorted) list, ties go to
    the higher rank, and the row is named after the lowest rank's graph."""
    if len({len(graphs) for graphs in totals.values()}) > 1:
        return None
    ranks = sorted(totals)
    rows = []
    for index in range(len(totals[ranks[0]]) if ranks else 0):
        fastest = slowest = None
        for rank in ranks:
            ns = totals[rank][index][1]
            if fastest is None or ns <= fastest[1]:
                fastest = (rank, ns)
            if slowest is None or ns >= slowest[1]:
                slowest = (rank, ns)
        assert fastest is not None and slowest is not None
        rows.append(
            RuntimeRow(
                graph=totals[ranks[0]][index][0],
                delta_ms=round_ms(slowest[1] - fastest[1]),
                fastest_rank=fastest[0],
                fastest_ms=round_ms(fastest[1]),
                slowest_rank=slowest[0],
                slowest_ms=round_ms(slowest[1]),
            )
        )
    return sorted(rows, key=lambda row: row.graph)


def runtime_events(rank: int, graph: str, ops: Iterable[tuple[str, float]]) -> Iterable[dict]:
    """Chrome trace 'X' events of one graph: its ops back to back from ts 0, in microseconds."""
    tid = runtime_tid(rank, graph)
    offset = 0
    for name, ns in ops:
        duration = max(1, as_u64(math.ceil(ns / 1000)))
        yield {
            "name": name,
            "ph": "X",
            "ts": offset,
            "dur": duration,
            "pid": rank,
            "tid": tid,
            "cat": "runtime",
            "args": {"graph": graph, "rank": rank, "runtime_ns": as_u64(ns)},
        }
        offset += duration


def runtime_metadata(graphs_by_rank: dict[int, list[str]]) -> Iterable[dict]:
    """Process and thread name/sort events: ranks ascending, then each rank's graphs by name."""
    for rank in sorted(graphs_by_rank):
        yield {"name": "process_name", "ph": "M", "pid": rank, "args": {"name": f"Rank {rank}"}}
        yield {"name": "process_sort_index", "ph": "M", "pid": rank, "args": {"sort_index": rank}}
    for rank in sorted(graphs_by_rank):
        for index, graph in enumerate(graphs_by_rank[rank]):
            tid = runtime_tid(rank, graph)
            yield {
                "name": "thread_name",
                "ph": "M",
                "pid": rank,
                "tid": tid,
                "args": {"name": f"graph {graph}"},
            }
            yield {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": rank,
                "tid": tid,
                "args": {"sort_index": index},
            }


# --- collectives parity -------------------------------------------------------------------

COLLECTIVES = ("all_reduce", "reduce_scatter", "all_gather", "broadcast", "all_to_all")
_TAG = re.compile(r"<[^>]*>", re.DOTALL)
_HASH_COMMENT = re.compile(r"#[^\n]*")
_LINE_COMMENT = re.compile(r"//[^\n]*")
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CALL = re.compile(
    r"torch\s*\.\s*ops\s*\.\s*_?c10d_functional\s*\.\s*(\w+)\s*\.\s*default\s*\(", re.ASCII
)


def collective_kind(op: str) -> str | None:
    """The collective an op name stands for (None for waits and everything else)."""
    op = op.rstrip("_")
    for kind in COLLECTIVES:
        if kind in op:
            return kind
    return "reduce" if "reduce" in op else None


def schedule_counts(ops: Iterable[str]) -> Counter:
    return Counter(kind for op in ops if (kind := collective_kind(op)) is not None)


def syntect_text(code: str) -> str:
    """What tlparse's highlighted output-code page reads as once its tags are stripped."""
    return (
        code.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def code_counts(page: str) -> tuple[Counter, int]:
    """Collective calls and wait_tensor calls in an output-code file (HTML or plain text),
    after dropping tags and comments, as tlparse counts them."""
    text = _TAG.sub("", page)
    text = _HASH_COMMENT.sub("", text)
    text = _LINE_COMMENT.sub("", text)
    text = _BLOCK_COMMENT.sub("", text)
    counts: Counter = Counter()
    waits = 0
    for found in _CALL.finditer(text):
        name = found.group(1)
        if name.rstrip("_") == "wait_tensor":
            waits += 1
        elif (kind := collective_kind(name)) is not None:
            counts[kind] += 1
    return counts, waits


def parity(schedule: Counter, code: Counter, waits: int) -> tuple[int, int]:
    """(offset, missing_waits): how far the scheduler's collectives are from the code's, and
    how many collectives in the code have no wait."""
    offset = sum(abs(schedule[k] - code[k]) for k in set(schedule) | set(code))
    return offset, max(0, sum(code.values()) - waits)


# --- graph execution order ----------------------------------------------------------------

SCHEDULE_MISMATCH = "ScheduleMismatch"
CACHE_MISMATCH = "CacheMismatch"


@dataclass
class OrderRow:
    index: int
    by_rank: dict[int, str]
    issues: list[str] = field(default_factory=list)


def _mismatch(values: list) -> bool:
    present = [v for v in values if v]
    return len(present) >= 2 and any(v != present[0] for v in present)


def analyze_execution_order(
    orders: dict[int, list[str]],
    schedules: dict[int, dict[str, list[str]]],
    cache_status: dict[int, dict[str, str]],
) -> list[OrderRow]:
    """Compare, position by position, the graph each rank ran: do the ranks that ran a graph
    with a known collective schedule (or cache status) at that position agree on it?"""
    rows = []
    for index in range(max((len(o) for o in orders.values()), default=0)):
        by_rank = {
            rank: orders[rank][index] for rank in sorted(orders) if index < len(orders[rank])
        }
        if not by_rank:
            continue
        row = OrderRow(index, by_rank)
        if _mismatch([schedules.get(r, {}).get(cid) for r, cid in by_rank.items()]):
            row.issues.append(SCHEDULE_MISMATCH)
        if _mismatch([cache_status.get(r, {}).get(cid) for r, cid in by_rank.items()]):
            row.issues.append(CACHE_MISMATCH)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class OrderSummary:
    order_differs: bool
    schedule_ranks: list[int]
    cache_ranks: list[int]


def summarize_execution_order(rows: list[OrderRow]) -> OrderSummary:
    def ranks_with(issue: str) -> list[int]:
        return sorted({rank for row in rows if issue in row.issues for rank in row.by_rank})

    return OrderSummary(
        order_differs=any(len(set(row.by_rank.values())) > 1 for row in rows),
        schedule_ranks=ranks_with(SCHEDULE_MISMATCH),
        cache_ranks=ranks_with(CACHE_MISMATCH),
    )


# --- rank lists that read at a thousand ranks ---------------------------------------------


def rank_ranges(ranks: Iterable[int]) -> str:
    """Ranks as ascending runs of consecutive numbers, `0-511, 513-1023`.

    At a thousand ranks a group written out rank by rank is a wall of numbers; as runs, the
    gaps (the ranks that differ) stand out. Duplicates count once and the input order does not
    matter, so callers may pass any collection of ranks.
    """
    runs: list[str] = []
    ordered = sorted(set(ranks))
    start = 0
    for index, rank in enumerate(ordered):
        if index + 1 < len(ordered) and ordered[index + 1] == rank + 1:
            continue
        first = ordered[start]
        runs.append(str(rank) if first == rank else f"{first}-{rank}")
        start = index + 1
    return ", ".join(runs)


def rank_count(ranks: Iterable[int]) -> str:
    """How many distinct ranks, spelled for a reader: `1 rank`, `1,023 ranks`."""
    count = len(set(ranks))
    return f"{count:,} rank" + ("" if count == 1 else "s")


def compact_ranks(ranks: Iterable[int]) -> str:
    """Ranges with their count, `0-511, 513-1023 (1,023 ranks)`: the form the page lists
    groups of ranks in."""
    distinct = set(ranks)
    return f"{rank_ranges(distinct)} ({rank_count(distinct)})"


def odd_ones_first(groups: Iterable[list[int]]) -> list[list[int]]:
    """Groups smallest first (ties by lowest rank): in a divergence, the few ranks that differ
    from the many are what a reader looks for, so they lead."""
    return sorted(groups, key=lambda group: (len(group), sorted(group)))


# --- compile time per rank ----------------------------------------------------------------

#: A rank is an outlier when |t - median| > OUTLIER_Z * spread (Iglewicz and Hoaglin's modified
#: z-score): spread is MAD_SCALE * MAD, which estimates the standard deviation of normal data
#: without letting the outliers themselves inflate it; when more than half the ranks have the
#: same time (MAD = 0), MEAN_AD_SCALE * the mean absolute deviation stands in for it.
OUTLIER_Z = 3.5
MAD_SCALE = 1.4826
MEAN_AD_SCALE = 1.2533


@dataclass(frozen=True)
class RankTime:
    rank: int
    seconds: float
    compiles: int
    outlier: bool


@dataclass(frozen=True)
class CompileTimes:
    """Each rank's total compile time and the ranks far from the median."""

    #: The rule's constants, for the page to state the rule it applied.
    z: ClassVar[float] = OUTLIER_Z
    mad_scale: ClassVar[float] = MAD_SCALE
    mean_ad_scale: ClassVar[float] = MEAN_AD_SCALE

    ranks: list[RankTime]
    median: float
    mad: float
    #: The spread the rule used: MAD_SCALE * mad, or MEAN_AD_SCALE * mean absolute deviation.
    spread: float
    mean_ad_fallback: bool

    @property
    def outliers(self) -> list[RankTime]:
        """Outlier ranks, slowest first."""
        return sorted((r for r in self.ranks if r.outlier), key=lambda r: (-r.seconds, r.rank))

    @property
    def threshold(self) -> float:
        return OUTLIER_Z * self.spread


def compile_times(totals: dict[int, tuple[float, int]]) -> CompileTimes | None:
    """Median, MAD and outliers of per-rank compile time ({rank: (seconds, compiles)}); None
    below two ranks, where there is nothing to compare."""
    if len(totals) < 2:
        return None
    seconds = [totals[rank][0] for rank in sorted(totals)]
    median = statistics.median(seconds)
    deviations = [abs(s - median) for s in seconds]
    mad = statistics.median(deviations)
    spread, fallback = MAD_SCALE * mad, False
    if mad == 0:
        spread, fallback = MEAN_AD_SCALE * statistics.fmean(deviations), True
    ranks = [
        RankTime(rank, totals[rank][0], totals[rank][1], spread > 0 and dev > OUTLIER_Z * spread)
        for rank, dev in zip(sorted(totals), deviations, strict=True)
    ]
    return CompileTimes(ranks, median, mad, spread, fallback)


@dataclass(frozen=True)
class Chart:
    """Geometry of the compile-time chart (an inline SVG, drawn by the template).

    One vertical bar per rank, in rank order: all ordinary ranks are a single <path> (one
    `M x y V y` per rank, about 16 bytes), so 1,024 ranks stay around 16 kB with bars under a
    pixel wide; outliers are <rect>s of their own with a <title> (there are few by definition).
    """

    width: int
    height: int
    left: int
    right: int
    base: float
    top: float
    bar: float
    bars: str
    outliers: list[tuple[float, float, float, RankTime]]
    median_y: float
    maximum: float
    first_rank: int
    last_rank: int


def chart(times: CompileTimes, width: int = 640, height: int = 150) -> Chart:
    """Lay out the bars: x by position in rank order, height proportional to compile time."""
    left, right, top, bottom = 56, 56, 8, 22
    base = height - bottom
    plot = width - left - right
    step = plot / len(times.ranks)
    bar = min(step * 0.8, 24) if step >= 3 else step  # gaps while bars are wide enough to see
    maximum = max(r.seconds for r in times.ranks) or 1.0

    def y(seconds: float) -> float:
        return round(base - seconds / maximum * (base - top), 1)

    bars, outliers = [], []
    for index, rank in enumerate(times.ranks):
        x = round(left + (index + 0.5) * step, 2)
        if rank.outlier:
            outliers.append((round(x - bar / 2, 2), y(rank.seconds), round(bar, 3), rank))
        else:
            bars.append(f"M{x:g} {base:g}V{y(rank.seconds):g}")
    return Chart(
        width=width,
        height=height,
        left=left,
        right=width - right,
        base=base,
        top=top,
        bar=round(bar, 3),
        bars="".join(bars),
        outliers=outliers,
        median_y=y(times.median),
        maximum=maximum,
        first_rank=times.ranks[0].rank,
        last_rank=times.ranks[-1].rank,
    )
