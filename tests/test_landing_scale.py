"""The multi-rank landing page at many ranks: rank groups as ranges with counts (odd ones out
first, tlparse's full lists folded), and the per-rank compile-time summary with its outliers
and inline SVG chart.

The report test builds 40 ranks from the repository's real torch 2.13 logs: every rank is a
copy of cache_1.log (all cache misses) except rank 21, a copy of cache_2.log (the same two
compiles, served from the cache), so rank 21 is the one rank whose cache pattern differs. Each
copy's compile times are rewritten to values chosen here, and ranks 5, 17 and 33 are made
slow, so every expected value below is worked out by hand from those choices.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import CORPUS, LogWriter, data_path, run_tldb

RANKS = 40
DIVERGENT = 21
SLOW = {5, 17, 33}
RANK_FILE = "dedicated_log_torch_trace_rank_{}.log"
SVG = "{http://www.w3.org/2000/svg}"


def analysis():
    from tldb.registry import ModuleRegistry

    ModuleRegistry.discover()
    return importlib.import_module("tldb_modules.multi_rank.analysis")


def compile_us(rank: int, compile_id: str) -> int:
    """The duration given to a compile of a rank: compile 0/0 takes 10 s (30 s on a slow rank)
    plus rank % 5 tenths of a second, compile 0/1 takes 2 s. A normal rank's total is thus
    12.0 to 12.4 s, a slow rank's 32.0 to 32.4 s."""
    if compile_id == "0/1":
        return 2_000_000
    return (30_000_000 if rank in SLOW else 10_000_000) + rank % 5 * 100_000


def with_compile_times(log: Path, rank: int) -> str:
    """The log's text with each compilation_metrics' duration (duration_us and the older
    entire_frame_compile_time_s field, which must agree) set by compile_us."""
    lines = []
    for line in log.read_text(encoding="utf-8").splitlines(keepends=True):
        prefix, bracket, body = line.partition("] ")
        if bracket and body.startswith('{"compilation_metrics"'):
            envelope = json.loads(body)
            metrics = envelope["compilation_metrics"]
            metrics["duration_us"] = compile_us(rank, metrics["compile_id"])
            metrics["entire_frame_compile_time_s"] = metrics["duration_us"] / 1e6
            line = prefix + bracket + json.dumps(envelope) + "\n"
        lines.append(line)
    return "".join(lines)


def landing_page(source: Path, out: Path) -> str:
    """`tldb report SOURCE -o OUT --all-ranks-html`, as a user runs it; the landing page."""
    result = run_tldb("report", str(source), "-o", str(out), "--all-ranks-html", "--no-browser")
    assert result.returncode == 0, result.stderr
    return (out / "index.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("scale")
    source = base / "in"
    source.mkdir()
    for rank in range(RANKS):
        log = data_path("torch213/cache_2.log" if rank == DIVERGENT else "torch213/cache_1.log")
        (source / RANK_FILE.format(rank)).write_text(with_compile_times(log, rank))
    return landing_page(source, base / "out")


def test_cache_groups_are_ranges_odd_one_first(landing):
    page = landing
    assert "Diverging Cache hit/miss patterns detected" in page
    compact = re.findall(r'<li><span class="rank-range">([^<]*)</span></li>', page)
    assert compact == ["21 (1 rank)", "0-20, 22-39 (39 ranks)"]


def test_full_rank_lists_stay_folded_in_tlparse_form(landing):
    folds = re.findall(r'<details class="rank-lists">(.*?)</details>', landing, re.DOTALL)
    lists = [re.findall(r"<li>Ranks: ([0-9, ]+)</li>", fold) for fold in folds]
    everyone_else = ", ".join(str(r) for r in range(RANKS) if r != DIVERGENT)
    assert [everyone_else, "21"] in lists  # tlparse's line, by lowest rank, inside the fold
    # Nothing of the full list is outside a fold.
    unfolded = re.sub(r"<details.*?</details>", "", landing, flags=re.DOTALL)
    assert "<li>Ranks:" not in unfolded


def test_compile_time_summary_flags_exactly_the_slow_ranks(landing):
    page = landing
    assert "Compile Time per Rank" in page
    # 37 normal ranks: 7 at 12.0 s, 8 at 12.1, 7 at 12.2, 7 at 12.3, 8 at 12.4; the 20th and
    # 21st of the 40 sorted totals are 12.2 s. Deviations from it: 7 zeros, then 15 at 0.1 s.
    assert "Median <strong>12.20 s</strong>" in page
    assert "(MAD) 0.10 s" in page
    assert "|time &minus; median| &gt; 3.5 &times; 1.4826 &times; MAD" in page
    assert "more than 0.52 s from the median" in page  # 3.5 * 1.4826 * 0.1
    assert '<strong>Outliers:</strong> <span class="rank-range">5, 17, 33 (3 ranks)</span>' in page
    outlier_rows = re.findall(r'<tr class="outlier"><td>(\d+)</td>', page)
    assert sorted(map(int, outlier_rows)) == sorted(SLOW)
    assert "<li>Rank 33: 32.30 s (2.6&times; the median)</li>" in page
    rows = re.findall(
        r"<tr(?: class=\"outlier\")?><td>(\d+)</td><td>(\d+)</td><td>([0-9.]+)</td>", page
    )
    assert len(rows) == RANKS
    assert ("0", "2", "12.00") in rows and ("21", "2", "12.10") in rows
    assert ("17", "2", "32.20") in rows


def test_compile_time_chart_is_well_formed_svg(landing):
    svg = re.search(r"<svg .*?</svg>", landing, re.DOTALL)
    assert svg is not None
    root = ET.fromstring(svg.group(0))  # well-formed XML, not just tag soup
    assert root.tag == SVG + "svg"
    paths = root.findall(SVG + "path")
    assert len(paths) == 1
    assert len(re.findall(r"M[0-9.]+ [0-9.]+V[0-9.]+", paths[0].get("d"))) == RANKS - len(SLOW)
    titles = {rect.findtext(SVG + "title") for rect in root.findall(SVG + "rect")}
    assert titles == {"Rank 5: 32.00 s", "Rank 17: 32.20 s", "Rank 33: 32.30 s"}
    assert root.find(f".//{SVG}script") is None and "href" not in svg.group(0)  # self-contained


def _hand_written_rank(path: Path, rank: int, frames: int, timed: bool) -> None:
    """A rank log written by hand: one Dynamo compile per frame, with compilation metrics of
    5 s for frame 0 and 1 s for the others, and a backward compile of frame 0 taking 2 s
    (bwd_compilation_metrics); none of these when not `timed`. Every rank also logs a
    compilation_metrics_runtime record of 100 s, which is not compile time."""
    writer = LogWriter()
    for frame in range(frames):
        ids = {"rank": rank, "frame_id": frame, "frame_compile_id": 0, "attempt": 0}
        writer.add({"dynamo_start": {"stack": []}, **ids})
        if timed:
            seconds = 5 if frame == 0 else 1
            metrics = {"compile_id": f"{frame}/0", "duration_us": seconds * 1_000_000}
            writer.add({"compilation_metrics": metrics, **ids})
            if frame == 0:
                backward = {"compile_id": "0/0", "duration_us": 2_000_000}
                writer.add({"bwd_compilation_metrics": backward, **ids})
        runtime = {"compile_id": f"{frame}/0", "duration_us": 100_000_000}
        writer.add({"compilation_metrics_runtime": runtime, **ids})
    writer.write(path)


def test_compile_id_groups_and_the_mad_zero_rule(tmp_path):
    """12 ranks: ranks 3 and 7 compile a second frame (other compile ids, 8 s in all instead of
    7 s: 5 s forward + 2 s backward, + 1 s); ranks 10 and 11 log no compile metrics. With 8 of
    the 10 timed ranks at exactly 7 s the MAD is 0, so the mean absolute deviation decides:
    2 ranks 1 s off give a mean of 0.2 s and a threshold of 3.5 * 1.2533 * 0.2 = 0.88 s, which
    ranks 3 and 7 exceed."""
    source = tmp_path / "in"
    source.mkdir()
    for rank in range(12):
        frames = 2 if rank in (3, 7) else 1
        _hand_written_rank(source / RANK_FILE.format(rank), rank, frames, timed=rank < 10)
    page = landing_page(source, tmp_path / "out")
    assert "Diverging Compilation IDs detected" in page
    groups = re.search(r"the same compile ids:</div>\s*<ul[^>]*>(.*?)</ul>", page, re.DOTALL)
    assert groups is not None
    assert re.findall(r'<span class="rank-range">([^<]*)</span>', groups.group(1)) == [
        "3, 7 (2 ranks)",
        "0-2, 4-6, 8-11 (10 ranks)",
    ]
    assert "Median <strong>7.00 s</strong>" in page and "(MAD) 0.00 s" in page
    assert "MAD is 0\nhere: 1.2533 &times; the mean absolute deviation stands in" in page
    assert "more than 0.88 s from the median" in page
    assert "<tr><td>0</td><td>2</td><td>7.00</td>" in page  # forward and backward counted
    assert '<tr class="outlier"><td>3</td><td>3</td><td>8.00</td>' in page
    assert '<strong>Outliers:</strong> <span class="rank-range">3, 7 (2 ranks)</span>' in page
    assert (
        'Without compile metrics (left out): <span class="rank-range">10-11 (2 ranks)</span>'
        in page
    )


@pytest.mark.extended
def test_execution_order_mismatch_is_folded(corpus, tmp_path):
    """tlparse's graph_exec_order_tests: both ranks schedule differently; the warning shows
    the ranks as ranges, tlparse's own line (`Rank 0, Rank 1`) is the folded body."""
    source = shutil.copytree(CORPUS / "tlparse-tests" / "graph_exec_order_tests", tmp_path / "in")
    page = landing_page(source, tmp_path / "out")
    fold = re.search(r'<details class="rank-fold">(.*?)</details>', page, re.DOTALL)
    assert fold is not None
    assert (
        '<summary><strong>Warning:</strong> Schedule mismatch across ranks: <span class="rank-'
        'range">0-1 (2 ranks)</span></summary>'
    ) in fold.group(0)
    assert "<p><strong>Warning:</strong> Schedule mismatch across ranks: Rank 0, Rank 1</p>" in (
        fold.group(1)
    )


# --- the pure functions, on edge cases ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ranks", "ranges", "count"),
    [
        ([], "", "0 ranks"),
        ([7], "7", "1 rank"),
        ([0, 1, 2, 5, 7, 8], "0-2, 5, 7-8", "6 ranks"),
        ([9, 3, 4, 1, 2], "1-4, 9", "5 ranks"),
        ([4, 4, 5, 5, 5, 9], "4-5, 9", "3 ranks"),
        ([1, 3, 5], "1, 3, 5", "3 ranks"),
        ([r for r in range(1024) if r != 512], "0-511, 513-1023", "1,023 ranks"),
    ],
)
def test_rank_ranges(ranks, ranges, count):
    an = analysis()
    assert an.rank_ranges(ranks) == ranges
    assert an.rank_count(ranks) == count
    assert an.compact_ranks(iter(ranks)) == f"{ranges} ({count})"  # any iterable, read once


def test_odd_ones_first_orders_by_size_then_lowest_rank():
    an = analysis()
    groups = [[0, 1, 2, 3], [7], [4, 5], [6]]
    assert an.odd_ones_first(groups) == [[6], [7], [4, 5], [0, 1, 2, 3]]


def test_compile_times_rule():
    an = analysis()
    assert an.compile_times({}) is None and an.compile_times({0: (5.0, 1)}) is None
    # Two ranks are each MAD away from their median: never outliers, however far apart.
    two = an.compile_times({0: (1.0, 1), 1: (100.0, 1)})
    assert two.median == 50.5 and not two.outliers
    # Most ranks equal: MAD is 0 and the mean absolute deviation decides. Here the deviations
    # are 0, 0, 0, 0, 40: mean 8, spread 1.2533 * 8, threshold 35.09 s, so rank 4 (40 s off)
    # is an outlier and a rank 1 s off would not be.
    flat = an.compile_times({0: (10.0, 1), 1: (10.0, 1), 2: (10.0, 1), 3: (10.0, 1), 4: (50.0, 2)})
    assert flat.mad == 0 and flat.mean_ad_fallback
    assert [r.rank for r in flat.outliers] == [4]
    # All equal: no spread at all, no outliers.
    same = an.compile_times(dict.fromkeys(range(5), (3.0, 1)))
    assert not same.outliers


def test_chart_stays_small_at_1024_ranks():
    an = analysis()
    totals = {r: (10.0 + r % 7 * 0.1, 2) for r in range(1024)}
    totals[700] = (80.0, 2)
    chart = an.chart(an.compile_times(totals))
    assert chart.bar < 1  # one bar per rank, thinner than a pixel
    assert len(chart.bars) < 20_000  # one path command per ordinary rank
    assert [rank.rank for *_, rank in chart.outliers] == [700]
