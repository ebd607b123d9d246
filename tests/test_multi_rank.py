"""`tldb report DIR --all-ranks-html`: tlparse's multi-rank conformance tests (19-41 of its
suite, run on copies of the inputs: extended), parity with tlparse 0.4.3 (every page, landing
and ranks, on tlparse's inputs and on variants of the in-repo gloo runs), and tldb's own
additions."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import CORPUS, LogWriter, data_path, run_tldb
from tlparse_parity import (
    TreeComparison,
    compare_page,
    compare_trees,
    page_kind,
    run_reference,
    run_tldb_report,
)

INPUTS = CORPUS / "tlparse-tests" / "inputs"
RANK = "dedicated_log_torch_trace_rank_{}.log"
MULTI_RANK_CASES = (
    "multi_rank_logs",
    "multi_rank_messy_input",
    "multi_rank_runtime",
    "multi_rank_schedule",
    "collectives_parity",
    "graph_exec_order",
    "torch213_2ranks",
)


def all_ranks(source: Path, out: Path, *flags: str, cwd: Path | None = None):
    return run_tldb(
        "report", str(source), "-o", str(out), "--all-ranks-html", "--overwrite", "--no-browser",
        *flags, cwd=cwd,
    )  # fmt: skip


def copy_inputs(target: Path, files: dict[str, Path]) -> Path:
    """A fresh input folder: name -> source file (the corpus is never touched)."""
    target.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        shutil.copyfile(source, target / name)
    return target


def copy_folder(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def report_ok(source: Path, out: Path, *flags: str) -> Path:
    result = all_ranks(source, out, *flags)
    assert result.returncode == 0, result.stderr
    return out


def landing(out: Path) -> str:
    return (out / "index.html").read_text()


def events(path: Path) -> list:
    return json.loads(path.read_text())


def analysis_module():
    from tldb.registry import ModuleRegistry

    ModuleRegistry.discover()
    return importlib.import_module("tldb_modules.multi_rank.analysis")


def _report_once(tmp_path_factory, folder: str) -> Path:
    """A pristine copy of a corpus folder, reported once for the tests of this file."""
    base = tmp_path_factory.mktemp(folder)
    return report_ok(copy_folder(INPUTS / folder, base / "in"), base / "out")


@pytest.fixture(scope="module")
def logs_report(corpus, tmp_path_factory) -> Path:
    return _report_once(tmp_path_factory, "multi_rank_logs")


@pytest.fixture(scope="module")
def runtime_report(corpus, tmp_path_factory) -> Path:
    """All 7 ranks of multi_rank_runtime."""
    return _report_once(tmp_path_factory, "multi_rank_runtime")


@pytest.fixture(scope="module")
def schedule_report(corpus, tmp_path_factory) -> Path:
    return _report_once(tmp_path_factory, "multi_rank_schedule")


# --- tlparse's tests 19-41 --------------------------------------------------------------------


def test_all_ranks_basic(logs_report):  # 19
    for page in ("rank_0/index.html", "rank_1/index.html", "index.html"):
        assert (logs_report / page).is_file()
    page = landing(logs_report)
    assert '<a href="rank_0/index.html">' in page
    assert '<a href="rank_1/index.html">' in page
    assert "collectives_parity.json" not in page
    assert "collectives_parity.json" in (logs_report / "rank_0" / "index.html").read_text()


def test_all_ranks_messy_input(corpus, tmp_path):  # 20
    source = copy_folder(INPUTS / "multi_rank_messy_input", tmp_path / "in")
    out = report_ok(source, tmp_path / "out")
    assert (out / "rank_0" / "index.html").is_file()
    assert (out / "rank_1" / "index.html").is_file()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["rank_0", "rank_1"]
    page = landing(out)
    assert '<a href="rank_0/index.html">' in page and '<a href="rank_1/index.html">' in page


def test_all_ranks_stdout(corpus, tmp_path):  # 21
    source = copy_folder(INPUTS / "multi_rank_logs", tmp_path / "in")
    out = tmp_path / "out"
    result = all_ranks(source, out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        *(f"Processing rank {r} → {out / f'rank_{r}'}" for r in range(4)),
        f"Multi-rank report generated under {out}",
        "Individual pages: rank_*/index.html",
    ]
    for page in ("rank_0/index.html", "rank_1/index.html", "index.html"):
        assert (out / page).is_file()


def test_all_ranks_with_latest_fails(corpus, tmp_path):  # 22
    result = all_ranks(INPUTS / "multi_rank_logs", tmp_path / "out", "--latest")
    assert result.returncode == 1
    assert "--latest cannot be used with --all-ranks-html" in result.stderr


def test_all_ranks_no_logs(tmp_path):  # 23 (without -o: OUT is ./tl_out, here in tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_tldb("report", str(empty), "--all-ranks-html", "--no-browser", cwd=tmp_path)
    assert result.returncode == 1
    assert "No rank log files found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_not_a_directory(corpus, tmp_path):
    result = all_ranks(INPUTS / "simple.log", tmp_path / "out")
    assert result.returncode == 1
    assert "must be a directory when using --all-ranks-html" in result.stderr


def _check_combined_chromium(out: Path, ranks: range) -> set[int]:
    combined = events(out / "chromium_events.json")
    assert combined
    pids = {event["pid"] for event in combined}
    for rank in ranks:
        own = events(out / f"rank_{rank}" / "chromium_events.json")
        assert len(own) == sum(1 for e in combined if e["pid"] == rank)
    page = landing(out)
    for rank in ranks:
        assert f"rank_{rank}" in page
        assert (out / f"rank_{rank}" / "index.html").is_file()
    return pids


def test_chromium_events_combined(logs_report):  # 24, on pristine inputs (see section 8)
    assert _check_combined_chromium(logs_report, range(4)) == {0, 1, 2, 3}


def test_chromium_events_sparse(corpus, tmp_path):  # 25, on a mutated copy
    source = copy_folder(INPUTS / "multi_rank_logs", tmp_path / "in")
    for rank in (0, 2):
        shutil.copyfile(INPUTS / "chromium_events.log", source / RANK.format(rank))
    (source / RANK.format(1)).write_bytes(b"")
    out = report_ok(source, tmp_path / "out")
    assert _check_combined_chromium(out, range(4)) == {0, 2, 3}
    assert events(out / "rank_1" / "chromium_events.json") == []
    assert "chromium_events.json" in landing(out)


def test_diverging_compile_ids_warning(logs_report):  # 26
    assert "Diverging Compilation IDs detected" in landing(logs_report)


def test_no_compile_id_divergence(corpus, tmp_path):  # 27
    simple = INPUTS / "simple.log"
    source = copy_inputs(tmp_path / "in", {RANK.format(0): simple, RANK.format(1): simple})
    assert "Diverging Compilation IDs detected" not in landing(report_ok(source, tmp_path / "o"))


def test_diverging_cache_events_warning(corpus, tmp_path):  # 28
    files = {RANK.format(0): INPUTS / "cache_hit_miss.log", RANK.format(1): INPUTS / "simple.log"}
    page = landing(report_ok(copy_inputs(tmp_path / "in", files), tmp_path / "out"))
    assert "Diverging Cache hit/miss patterns detected" in page
    assert "<li>Ranks: 0</li>" in page and "<li>Ranks: 1</li>" in page


def test_no_cache_event_divergence(corpus, tmp_path):  # 29
    log = INPUTS / "cache_hit_miss.log"
    source = copy_inputs(tmp_path / "in", {RANK.format(0): log, RANK.format(1): log})
    page = landing(report_ok(source, tmp_path / "out"))
    assert "Diverging Cache hit/miss patterns detected" not in page


def test_diverging_cache_events_multiple_groups(logs_report):  # 30
    page = landing(logs_report)
    assert "Diverging Cache hit/miss patterns detected" in page
    groups = re.findall(r"<li>Ranks: ([0-9, ]+)</li>", page)
    assert groups == ["0, 2", "1", "3"]  # sorted by first rank, not hash-map order


def test_collective_schedule_parsing(schedule_report):  # 31
    for page in ("rank_0/index.html", "rank_1/index.html", "rank_2/index.html", "index.html"):
        assert (schedule_report / page).is_file()
    schedules = events(schedule_report / "collective_schedules.json")
    assert schedules
    ops = {s["rank"]: s["ops"] for s in schedules if s["graph"] == "-_0_0_0"}
    assert ops[0] == ops[2] != ops[1]
    assert len(ops[0]) == 6 and len(ops[1]) == 4


def test_collective_schedule_no_divergence(corpus, tmp_path):  # 32
    folder = INPUTS / "multi_rank_schedule"
    files = {
        RANK.format(0): folder / "dedicated_log_torch_trace_rank_0_6u3fubwl.log",
        RANK.format(2): folder / RANK.format(2),
    }
    page = landing(report_ok(copy_inputs(tmp_path / "in", files), tmp_path / "out"))
    assert "Warning:</strong> Diverging collective operation sequences" not in page


def test_collective_schedule_with_divergence(schedule_report):  # 33
    page = landing(schedule_report)
    assert "Warning:</strong> Diverging collective operation sequences" in page
    assert "Ranks: 0, 2" in page and "Ranks: 1" in page


def test_runtime_estimation_parsing(corpus, tmp_path):  # 34 (OUT inside the input folder)
    source = copy_folder(INPUTS / "multi_rank_runtime", tmp_path / "in")
    out = report_ok(source, source / "out")
    estimates = events(out / "runtime_estimations.json")
    assert estimates
    assert {0, 1} <= {e["rank"] for e in estimates}
    for estimate in estimates:
        for op in estimate["ops"]:
            assert isinstance(op["name"], str)
            assert isinstance(op["estimated_runtime_ns"], int | float)
            assert "type" not in op


def test_runtime_analysis_working(corpus, tmp_path):  # 35
    folder = INPUTS / "multi_rank_runtime"
    files = {RANK.format(r): folder / RANK.format(r) for r in range(4)}
    page = landing(report_ok(copy_inputs(tmp_path / "in", files), tmp_path / "out"))
    assert "Graph Runtime Analysis" in page and "ms delta" in page
    assert "Runtime analysis not available" not in page
    # The values tlparse 0.4.3 prints for these four ranks.
    assert (
        "<strong>Graph -_0_0_0:</strong> 2.071 ms delta (Fastest: Rank 0 - 13.806 ms, "
        "Slowest: Rank 3 - 15.877 ms)"
    ) in page
    assert (
        "<strong>Graph -_0_3_0:</strong> 2.079 ms delta (Fastest: Rank 0 - 13.859 ms, "
        "Slowest: Rank 3 - 15.938 ms)"
    ) in page


def test_runtime_analysis_mismatched_graphs(runtime_report):  # 36
    page = landing(runtime_report)
    assert "Graph Runtime Analysis" in page and "Runtime analysis not available" in page
    assert "ms delta" not in page


def test_chromium_trace_with_runtime(runtime_report):  # 37
    trace = events(runtime_report / "chromium_trace_with_runtime.json")
    assert trace
    spans = [e for e in trace if e["ph"] == "X" and e["cat"] == "runtime"]
    for e in spans:
        assert isinstance(e["name"], str)
        assert isinstance(e["dur"], int) and e["dur"] > 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert isinstance(e["args"]["runtime_ns"], int | float)
        assert isinstance(e["args"]["graph"], str)
        assert e["pid"] == e["args"]["rank"]
    assert {e["pid"] for e in spans} == set(range(7))
    # tlparse's thread id of a graph: FxHash of (rank, folder), low 32 bits.
    tids = {(e["pid"], e["args"]["graph"]): e["tid"] for e in spans}
    assert tids[0, "-_0_0_0"] == 2757132989 and tids[1, "-_0_3_0"] == 2209893374


def test_tensor_meta_divergence_groups(runtime_report):  # 38
    page = landing(runtime_report)
    assert "Tensor Metadata Analysis" in page
    assert "Ranks exhibit divergent inductor tensor meta" in page
    assert "Ranks: 5, 6" in page


def test_execution_order_analysis():  # 39, the analysis API on its own
    an = analysis_module()
    orders = {0: ["0/0", "0/1", "0/2"], 1: ["0/1", "0/0", "0/2"]}
    # Rank 1 schedules graph 0/1 differently from rank 0's 0/0, which rank 1 does not record;
    # rank 0's cache status of 0/1 differs from rank 1's 0/0, and rank 0 records none for 0/0.
    schedules = {0: {"0/0": ["all_reduce"], "0/2": ["x"]}, 1: {"0/1": ["all_gather"], "0/2": ["x"]}}
    cache = {0: {"0/1": "✅", "0/2": "❌"}, 1: {"0/0": "❌", "0/2": "❌"}}
    rows = an.analyze_execution_order(orders, schedules, cache)
    assert [(r.index, r.by_rank, r.issues) for r in rows] == [
        (0, {0: "0/0", 1: "0/1"}, [an.SCHEDULE_MISMATCH]),
        (1, {0: "0/1", 1: "0/0"}, [an.CACHE_MISMATCH]),
        (2, {0: "0/2", 1: "0/2"}, []),
    ]
    summary = an.summarize_execution_order(rows)
    assert summary.order_differs
    assert summary.schedule_ranks == [0, 1] and summary.cache_ranks == [0, 1]


def test_collectives_parity_detects_mismatch(corpus, tmp_path):  # 40
    source = copy_folder(INPUTS / "collectives_parity", tmp_path / "in")
    out = report_ok(source, tmp_path / "out")
    assert sorted(p.name for p in out.glob("rank_*")) == ["rank_0"]
    report = json.loads((out / "rank_0" / "collectives_parity.json").read_text())
    assert report["description"].startswith("Difference of # of collectives")
    assert report["graphs"] == [  # by folder name (tlparse: listing order)
        {"graph": "-_0_0_0", "compile_id": "[0/0]", "offset": 0, "missing_waits": 1},
        {"graph": "-_0_1_0", "compile_id": "[0/1]", "offset": 0, "missing_waits": 3},
    ]


def test_graph_execution_order_diagnostics(corpus, tmp_path):  # 41
    source = copy_folder(CORPUS / "tlparse-tests" / "graph_exec_order_tests", tmp_path / "in")
    page = landing(report_ok(source, tmp_path / "out"))
    assert "Graph Execution-Order Diagnostics" in page
    assert "Graph execution order differs across ranks" in page
    assert "Cache hit/miss sequence: Consistent across ranks" in page
    assert "Warning:</strong> Cache hit/miss mismatch across ranks" not in page
    assert "Warning:</strong> Schedule mismatch across ranks: Rank 0, Rank 1" in page


# --- parity with tlparse 0.4.3 ------------------------------------------------------------------


def assert_multi_rank_parity(oracle: list[str], source: Path, root: Path) -> TreeComparison:
    """tlparse and tldb on one folder of rank logs (--all-ranks-html): every file of tlparse's
    tree is in tldb's, data files are identical (listing-ordered files up to the order of
    their entries, see tlparse_parity), and every page, the landing page and each rank's
    pages, matches tlparse's (compare_page: all of tlparse's text but its explanatory prose,
    in order, and the same links)."""
    ref, got = root / "tlparse", root / "tldb"
    theirs = run_reference(oracle, source, ref, "--all-ranks-html")
    assert theirs.returncode == 0, theirs.stderr
    ours = run_tldb_report(source, got, "--all-ranks-html")
    assert ours.returncode == 0, ours.stderr
    comparison = compare_trees(ref, got)
    assert comparison.missing == []
    assert comparison.differ == []  # raw.jsonl too: string tables leaked between ranks
    differences = []
    for rel in comparison.pages:
        kind = page_kind(rel, ["--all-ranks-html"])
        found = compare_page(ref / rel, got / rel, rel, kind, comparison.extra)
        if found:
            differences.append(f"{rel} ({kind}):\n{found.describe()}")
    assert differences == [], "\n".join(differences)
    assert "index.html" in comparison.pages
    assert any(rel.startswith("rank_") for rel in comparison.pages)
    return comparison


@pytest.mark.extended
@pytest.mark.parametrize("name", MULTI_RANK_CASES)
def test_parity_with_tlparse(name, oracle, corpus, tmp_path):
    """tlparse's multi-rank inputs and the corpus's torch 2.13 two-rank run."""
    case = next(c for c in json.loads((corpus / "cases.json").read_text()) if c["name"] == name)
    assert case["flags"] == ["--all-ranks-html"]
    assert_multi_rank_parity(oracle, corpus / case["input"], tmp_path)


#: In-repo multi-rank inputs built from the gloo runs of tests/data/torch213 (ranks2: two ranks
#: that differ only in tensor metadata; ranks4: four ranks whose compile ids, cache outcomes and
#: collective schedules diverge), as {rank file name: in-repo log, or None for an empty file}.
#: The plain folders are cases of tests/data/cases.json (test_parity); these variants give the
#: landing page's analyses other rank sets.
GLOO = "torch213/ranks{}/dedicated_log_torch_trace_rank_{}.log"
GLOO_VARIANTS = {
    # Rank numbers with a gap (no rank 2).
    "ranks4_sparse": {RANK.format(r): GLOO.format(4, r) for r in (0, 1, 3)},
    # Two ranks from different runs: their compile ids, cache outcomes and collective
    # schedules diverge.
    "mixed_runs": {RANK.format(0): GLOO.format(2, 0), RANK.format(1): GLOO.format(4, 3)},
    # The two-rank run with its ranks swapped, and a third rank whose log is empty.
    "ranks2_swapped_and_empty": {
        RANK.format(0): GLOO.format(2, 1),
        RANK.format(1): GLOO.format(2, 0),
        RANK.format(2): None,
    },
}


@pytest.mark.parametrize("name", GLOO_VARIANTS)
def test_in_repo_parity_with_tlparse(name, oracle, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for rank_file, log in GLOO_VARIANTS[name].items():
        (source / rank_file).write_bytes(data_path(log).read_bytes() if log else b"")
    assert_multi_rank_parity(oracle, source, tmp_path / "reports")
    # Each variant's ranks differ: the landing page's analyses have something to say.
    page = landing(tmp_path / "reports" / "tldb")
    assert "Diverging collective operation sequences detected" in page
    assert "Diverging Cache hit/miss patterns detected" in page


# --- tldb's own behaviour -----------------------------------------------------------------------


def _ranked_log(path: Path, rank: int, frames: int = 1, strings: dict | None = None) -> Path:
    writer = LogWriter()
    for idx, name in (strings or {}).items():
        writer.add({"str": [name, idx]})
    for frame in range(frames):
        writer.add(
            {"dynamo_start": {}, "rank": rank, "frame_id": frame, "frame_compile_id": 0},
        )
    return writer.write(path)


def test_ranks_from_envelopes_when_no_file_is_named_for_them(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    _ranked_log(source / "host-a.log", 1)
    _ranked_log(source / "host-b.txt", 0)
    (source / "notes.txt").write_text("no envelopes here\n")
    out = tmp_path / "out"
    result = all_ranks(source, out)
    assert result.returncode == 0, result.stderr
    assert "ranks read from envelopes: rank 0 = host-b.txt, rank 1 = host-a.log" in result.stderr
    assert (out / "rank_0" / "raw.log").read_bytes() == (source / "host-b.txt").read_bytes()
    assert (out / "rank_1" / "raw.log").read_bytes() == (source / "host-a.log").read_bytes()
    # A rank-named file switches the fallback off: tlparse's rule alone decides then.
    _ranked_log(source / RANK.format(5), 5)
    result = all_ranks(source, out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("rank_*")) == ["rank_5"]


def test_two_logs_for_one_rank_is_an_error(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    _ranked_log(source / "dedicated_log_torch_trace_rank_3_a.log", 3)
    _ranked_log(source / "dedicated_log_torch_trace_rank_+3.log", 3)  # "+3" is rank 3 as for u32
    result = all_ranks(source, tmp_path / "out")
    assert result.returncode == 1
    assert "Several logs for one rank" in result.stderr and "rank 3:" in result.stderr


def test_many_ranks_landing_stays_compact(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    ranks = list(range(70))
    for rank in ranks:
        _ranked_log(source / RANK.format(rank), rank, frames=1 + (rank == 69))
    out = report_ok(source, tmp_path / "out")
    page = landing(out)
    for rank in ranks:
        assert f'<a href="rank_{rank}/index.html">Rank {rank}</a>' in page
    assert page.count('<details class="rank-block"') == 2
    assert "Ranks 0–63" in page and "Ranks 64–69" in page
    assert "Diverging Compilation IDs detected" in page
    combined = sqlite3.connect(out / "ranks.db")
    counts = dict(combined.execute("SELECT rank, count(*) FROM envelopes GROUP BY rank"))
    assert counts == {rank: 1 + (rank == 69) for rank in ranks}


def _artifact(writer: LogWriter, name: str, payload: str, rank: int, frame: int = 0) -> None:
    writer.add(
        {"artifact": {"name": name, "encoding": "json"}, "rank": rank, "frame_id": frame,
         "frame_compile_id": 0, "attempt": 0},
        payload,
    )  # fmt: skip


def test_malformed_runtime_and_schedule_artifacts_are_listed_not_fatal(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    good = json.dumps({"ops": [{"name": "mm", "estimated_runtime_ns": 1500.0}]})
    for rank in (0, 1):
        writer = LogWriter()
        _artifact(writer, "inductor_runtime_and_tensor_meta", good, rank, frame=0)
        _artifact(writer, "inductor_collective_schedule", json.dumps(["all_reduce"]), rank)
        if rank == 1:
            _artifact(writer, "inductor_runtime_and_tensor_meta", '{"ops": [{"name": 1}]}', 1, 1)
            _artifact(writer, "inductor_collective_schedule", '{"not": "a list"}', 1, frame=2)
        writer.write(source / RANK.format(rank))
    out = report_ok(source, tmp_path / "out")
    page = landing(out)
    assert "2 artifact(s) could not be read" in page
    assert "Unreadable artifacts" in page
    assert "-_1_0_0/inductor_runtime_and_tensor_meta_" in page
    assert "-_2_0_0/inductor_collective_schedule_" in page
    assert "Graph Runtime Analysis" in page
    estimates = events(out / "runtime_estimations.json")
    assert [(e["rank"], e["graph"]) for e in estimates] == [(0, "-_0_0_0"), (1, "-_0_0_0")]


def test_string_table_leaks_in_listing_order_only_into_raw_jsonl(tmp_path):
    """tlparse's shared string table: a rank's raw.jsonl also holds the entries of the ranks
    processed (listed) before it. The combined database keeps each rank's own strings."""
    source = tmp_path / "in"
    source.mkdir()
    _ranked_log(source / RANK.format(0), 0, strings={0: "/a/zero.py", 1: "/a/one.py"})
    _ranked_log(source / RANK.format(1), 1, strings={0: "/b/zero.py"})
    out = report_ok(source, tmp_path / "out")
    listing = os.listdir(source)
    first = {0: ["/a/zero.py", "/a/one.py"], 1: ["/b/zero.py"]}
    if listing.index(RANK.format(0)) < listing.index(RANK.format(1)):
        first[1] = ["/b/zero.py", "/a/one.py"]
    for rank, table in first.items():
        line = (out / f"rank_{rank}" / "raw.jsonl").read_text().splitlines()[0]
        assert json.loads(line) == {"string_table": table}
    combined = sqlite3.connect(out / "ranks.db")
    rows = combined.execute("SELECT rank, idx, value FROM strings ORDER BY rank, idx").fetchall()
    assert rows == [(0, 0, "/a/zero.py"), (0, 1, "/a/one.py"), (1, 0, "/b/zero.py")]


def in_repo_ranks(folder: Path, logs: list[str]) -> Path:
    """A folder of rank logs made of in-repo torch 2.13 logs: rank N is logs[N]."""
    return copy_inputs(folder, {RANK.format(n): data_path(name) for n, name in enumerate(logs)})


def test_strict_names_the_failing_rank_after_writing_everything(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    _ranked_log(source / RANK.format(0), 0, frames=2)
    writer = LogWriter()
    writer.add({"dynamo_start": {}, "rank": 1, "frame_id": 0, "frame_compile_id": 0})
    writer.add({"artifact": {"name": "a", "encoding": "string"}, "rank": 1}, "x", bad_md5=True)
    writer.write(source / RANK.format(1))
    out = tmp_path / "out"
    result = all_ranks(source, out, "--strict")
    assert result.returncode == 1
    # Rank 1: two envelopes accepted, one payload whose md5 is not the declared one.
    assert "rank 1 has problems: Stats { ok: 2, fail_payload_md5: 1 }" in result.stderr
    assert "rank 0 has problems" not in result.stderr
    assert (out / "index.html").is_file() and (out / "rank_1" / "index.html").is_file()


def test_export_mode_works_with_all_ranks(tmp_path):
    source = in_repo_ranks(tmp_path / "in", ["torch213/draft_export.log", "torch213/export.log"])
    out = report_ok(source, tmp_path / "out", "--export")
    for rank in (0, 1):
        assert "Draft Export Report" in (out / f"rank_{rank}" / "index.html").read_text()
        assert f'<a href="rank_{rank}/index.html">' in landing(out)


def test_report_does_not_depend_on_worker_count(tmp_path):
    from tldb.multirank import run_multi_rank
    from tldb.report import ReportRequest

    source = in_repo_ranks(tmp_path / "in", [GLOO.format(4, rank) for rank in range(4)])
    trees = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        run_multi_rank(ReportRequest(source=source, out_dir=out), workers=workers)
        trees.append(
            {
                p.relative_to(out).as_posix(): p.read_bytes()
                for p in out.rglob("*")
                if p.is_file() and p.suffix != ".db"
            }
        )
    assert len(trees[0]) > 30
    assert trees[0] == trees[1]


def test_inherited_string_tables_follow_the_listing_and_equal_ones_are_shared():
    """tlparse's string table leaks from the ranks listed before a rank; the parent keeps one
    dict per distinct inherited table (not one per rank) and drops the ranks' own tables."""
    from tldb.multirank import inherited_strings
    from tldb.rankfiles import RankFolder, RankLog
    from tldb.rankstep import for_driver

    own = {0: [[1, "a.py"]], 1: [[2, "b.py"]], 2: [[1, "a.py"]], 3: [[2, "b.py"]]}
    records = {
        rank: for_driver({"key": {}, "summary": {"strings": strings}, "render": None})
        for rank, strings in own.items()
    }
    listing = (0, 1, 2, 3)
    folder = RankFolder(tuple(RankLog(r, Path(f"r{r}.log")) for r in listing), listing, False)
    inherited = inherited_strings(folder, records)
    assert inherited == {0: {}, 1: {1: "a.py"}, 2: {2: "b.py"}, 3: {1: "a.py"}}
    assert inherited[1] is inherited[3]
    assert all("strings" not in record["summary"] for record in records.values())
