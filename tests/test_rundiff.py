"""Whole-run `tldb diff A B` and `tldb check` on pairs of real torch 2.13 runs.

Each pair under tests/data/torch213/pairs is one program in two versions that differ in one
thing (tests/data/generate_traces.py, pair_runs): a graph break removed, a second call with
another dtype (a recompile), another int argument (a guard), the same Inductor compile with a
cold and then a warm cache. Each test says which kinds of change the pair must show, and
why; the details (reasons, locations, counts) are read from the logs with plain json
(tests/torch213_log.py), not from tldb.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from conftest import data_path
from pair_logs import LOGS, PAIRS, artifacts, build_databases, cache_outcomes, frames
from torch213_log import envelopes

from tldb.cli import cli
from tldb.loader import build_database
from tldb.rundiff import RunDiff, Threshold, compare_runs, diff_runs
from tldb.runfacts import Compile, RunFacts
from tldb.runs import Run


@pytest.fixture(scope="module")
def dbs(tmp_path_factory) -> dict[str, Path]:
    return build_databases(tmp_path_factory.mktemp("rundiff"))


def tldb(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def run_diff(dbs, a: str, b: str) -> RunDiff:
    diff = compare_runs(Run(a, {None: dbs[a]}), Run(b, {None: dbs[b]}))
    assert len(diff.ranks) == 1
    return diff.ranks[0].diff


@pytest.mark.parametrize("log", LOGS)
def test_a_run_compared_with_itself_is_empty(dbs, log):
    assert run_diff(dbs, log, log).empty()


def test_graph_break_fixed(dbs):
    """Without the break, Dynamo compiles `step` whole: the break is fixed, the resume
    function is no longer compiled, `step`'s compile ends normally with the whole graph, and
    the guards on torch._dynamo.graph_break (the only use of `torch` in `step`) are gone."""
    diff = run_diff(dbs, *PAIRS["graph_break"])
    assert diff.categories() == {
        "graph_breaks",
        "compiles_removed",
        "status_changed",
        "outputs_changed",
        "guards_removed",
    }
    (reason,) = artifacts("graph_break_before", "dynamo_graph_break_reason")
    assert artifacts("graph_break_after", "dynamo_graph_break_reason") == []
    (change,) = diff.graph_breaks
    assert (change.status, change.a, change.b) == ("fixed", 1, 0)
    location = reason.split("\n", 1)[0].removeprefix("Graph break in user code at ")
    assert change.key[1] == location
    assert "torch._dynamo.graph_break()" in change.key[0]
    gone = frames("graph_break_before") - frames("graph_break_after")
    assert len(gone) == 1
    (removed,) = diff.compiles_removed
    assert removed.startswith(next(iter(gone)) + " (")
    (compile_change,) = diff.compiles_changed
    assert compile_change.frame.startswith("step (")
    assert (compile_change.status_a, compile_change.status_b) == ("break", "ok")
    assert "dynamo_output_graph" in compile_change.outputs_changed
    assert compile_change.guards_removed
    assert all("G['torch']" in guard for guard in compile_change.guards_removed)


def test_new_recompile(dbs):
    """A second call with float64: one more compile of `shifted`, with its dtype reason."""
    diff = run_diff(dbs, *PAIRS["recompile"])
    assert diff.categories() == {"compiles_added", "recompiles"}
    assert artifacts("recompile_before", "recompile_reasons") == []
    (logged,) = artifacts("recompile_after", "recompile_reasons")  # one reason: plain text
    assert "dtype mismatch" in logged
    (change,) = diff.recompiles
    assert change.frame.startswith("shifted (")
    assert (change.a, change.b, change.reasons_removed) == (0, 1, [])
    assert change.reasons_added == [logged.split(": ", 1)[1]]  # without the `0/0: ` prefix
    (added,) = diff.compiles_added
    assert added.startswith("shifted (") and " #2 " in added


def test_changed_guard(dbs):
    """`pick(x, 3)` then `pick(x, 5)`: the same graph under another value guard."""
    diff = run_diff(dbs, *PAIRS["guard"])
    assert diff.categories() == {"guards_added", "guards_removed"}
    (change,) = diff.compiles_changed
    assert change.frame.startswith("pick (")
    assert change.guards_added == ["EQUALS_MATCH: L['n'] == 5"]
    assert change.guards_removed == ["EQUALS_MATCH: L['n'] == 3"]


def test_input_made_dynamic(dbs):
    """mark_dynamic(x, 0) before the same call: x's size becomes a symbol, so the graphs and
    the tensor guard change (size [6] -> [None]) and a guard bounds the symbol; back the other
    way, x becomes static again."""
    diff = run_diff(dbs, *PAIRS["dynamic"])
    assert diff.categories() == {
        "became_dynamic",
        "guards_added",
        "guards_removed",
        "outputs_changed",
    }
    (graph,) = [p for k, _, p in envelopes("pairs/dynamic_after") if k == "dynamo_output_graph"]
    assert "Sym(" in graph.split("def forward", 1)[1].split("\n", 1)[0]
    (change,) = diff.compiles_changed
    assert change.frame.startswith("doubled (") and change.became_dynamic == ["L_x_"]
    assert "dynamo_output_graph" in change.outputs_changed
    tensor_added = [g for g in change.guards_added if g.startswith("TENSOR_MATCH")]
    tensor_removed = [g for g in change.guards_removed if g.startswith("TENSOR_MATCH")]
    assert len(tensor_added) == len(tensor_removed) == 1
    assert "size=[None]" in tensor_added[0] and "size=[6]" in tensor_removed[0]
    (back,) = run_diff(dbs, *PAIRS["dynamic"][::-1]).compiles_changed
    assert (back.became_static, back.became_dynamic) == (["L_x_"], [])


def test_cold_and_warm_cache(dbs):
    """The warm run hits both caches the cold run missed, and compiles faster (the only
    compile time change reported is a drop)."""
    diff = run_diff(dbs, *PAIRS["cache"])
    assert diff.categories() <= {"caches", "phases"}
    cold, warm = cache_outcomes("cache_cold"), cache_outcomes("cache_warm")
    assert set(cold) == set(warm) == {"fx_graph", "aotautograd"}
    assert {c.cache: (c.a, c.b) for c in diff.caches} == {
        cache: (dict(cold[cache]), dict(warm[cache])) for cache in cold
    }
    for c in diff.caches:
        assert (c.hit_rate_a, c.hit_rate_b) == (0.0, 1.0)
    assert all(p.delta < 0 for p in diff.phases)


def test_compiles_are_matched_by_frame_and_order_not_by_id():
    """Hand-made facts: B compiles a new frame first, so every compile id shifts by one."""

    def compile_(name: str, index: int, cid: str, guard: str) -> Compile:
        return Compile((name, "m.py", 1), index, cid, "ok", 0.1, frozenset({("G", guard)}))

    a = RunFacts([compile_("f", 0, "[0/0]", "f0"), compile_("f", 1, "[0/1]", "f1")])
    a.compiles.append(compile_("g", 0, "[1/0]", "g0"))
    b = RunFacts([compile_("h", 0, "[0/0]", "h0"), compile_("f", 0, "[1/0]", "f0")])
    b.compiles += [compile_("f", 1, "[1/1]", "f1"), compile_("g", 0, "[2/0]", "g0 changed")]
    diff = diff_runs(a, b)
    assert diff.compiles_added == ["h (m.py:1) #1 [0/0]"]
    assert diff.compiles_removed == []
    (change,) = diff.compiles_changed  # g: its guard changed, f's compiles did not
    assert (change.frame, change.id_a, change.id_b) == ("g (m.py:1)", "[1/0]", "[2/0]")
    assert (change.guards_added, change.guards_removed) == (["G: g0 changed"], ["G: g0"])


def test_cli_text_json_html_and_exit_code(dbs, tmp_path):
    before, after = (dbs[n] for n in PAIRS["graph_break"])
    same = tldb("diff", before, before, "--exit-code")
    assert same.exit_code == 0, same.output
    assert "No differences." in same.output
    text = tldb("diff", before, after, "--exit-code")
    assert text.exit_code == 1, text.output
    assert "graph breaks:\n  fixed (1 -> 0): " in text.output
    # databases given: the per-compile command for the changed compile is printed
    assert f"tldb diff {before} {after} 0/0 0/0" in text.output
    data = json.loads(tldb("diff", before, after, "--json").output)
    assert data["empty"] is False
    assert [g["status"] for g in data["graph_breaks"]] == ["fixed"]
    page = tmp_path / "diff.html"
    assert tldb("diff", before, after, "--html", page).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert "<h3>Graph breaks</h3>" in html
    link = html.split('class="compile-diff" href="', 1)[1].split('"', 1)[0]
    assert (tmp_path / link).is_file()
    assert "<h1>Compile diff</h1>" in (tmp_path / link).read_text(encoding="utf-8")


def test_cli_loads_logs_and_keeps_the_compile_forms(dbs):
    """Logs are loaded on the fly; three and four arguments are the per-compile diff."""
    logs = [data_path(f"torch213/pairs/{n}.log") for n in PAIRS["guard"]]
    result = tldb("diff", *logs)
    assert result.exit_code == 0, result.output
    assert "    + EQUALS_MATCH: L['n'] == 5" in result.output.splitlines()
    assert "tldb diff " not in result.output  # logs: no database path to name
    before, after = (dbs[n] for n in PAIRS["guard"])
    compile_form = tldb("diff", before, after, "0/0", "0/0")
    assert compile_form.exit_code == 0, compile_form.output
    assert "### guards: dynamo_cpp_guards_str (changed)" in compile_form.output
    assert "-| | +- EQUALS_MATCH: L['n'] == 3" in compile_form.output.replace("\t", "")
    wrong = tldb("diff", before, "0/0", "0/0", "0/0", "0/0")
    assert wrong.exit_code == 2 and "takes 2, 3 or 4 arguments" in wrong.output


def test_a_trace_folder_with_one_log_is_that_run(dbs, tmp_path):
    """What TORCH_TRACE=DIR leaves for one process: a folder with one log (no rank in its name)."""
    folder = tmp_path / "trace"
    folder.mkdir()
    log = data_path("torch213/pairs/graph_break_before.log")
    (folder / "dedicated_log_torch_trace_x1y2.log").write_bytes(log.read_bytes())
    assert tldb("diff", folder, dbs["graph_break_before"], "--exit-code").exit_code == 0
    assert tldb("check", folder, "--max-graph-breaks", "0").exit_code == 1


def test_help_documents_both_forms():
    text = tldb("diff", "--help").output
    assert "tldb diff A B " in text and "tldb diff DB ID_A ID_B" in text
    assert "chosen by the number of arguments" in " ".join(text.split())


def test_cli_bad_runs_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (
        ["diff", tmp_path / "missing.log", tmp_path / "missing.log"],
        ["diff", tmp_path / "empty", tmp_path / "empty"],
        ["check", tmp_path / "missing.log", "--no-failures"],
    ):
        result = tldb(*args)
        assert result.exit_code == 1
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1


def test_multi_rank_folders_per_rank(tmp_path):
    ranks2, ranks4 = data_path("torch213/ranks2"), data_path("torch213/ranks4")
    # a multi-rank report folder (OUT/rank_N/trace.db) is the same run as its rank logs
    for rank in (0, 1):
        log = ranks2 / f"dedicated_log_torch_trace_rank_{rank}.log"
        build_database([log], tmp_path / "out" / f"rank_{rank}" / "trace.db")
    report = tldb("diff", tmp_path / "out", ranks2, "--exit-code")
    assert report.exit_code == 0, report.output
    assert "No differences." in report.output
    mixed = tldb("diff", tmp_path / "out", data_path("torch213/pairs/guard_before.log"))
    assert mixed.exit_code == 1 and "multi-rank run with a single-rank one" in mixed.output
    same = tldb("diff", ranks4, ranks4, "--exit-code")
    assert same.exit_code == 0, same.output
    assert "No differences." in same.output
    data = json.loads(tldb("diff", ranks2, ranks4, "--json").output)
    assert (data["only_in_a"], data["only_in_b"]) == ([], [2, 3])
    assert sorted(data["ranks"]) == ["0", "1"]


# ------------------------------------------------------------------------------- tldb check


#: (worse run, better run) of each pair: the graph break, the recompile, the cache misses.
WORSE_BETTER = {
    "graph_break": ("graph_break_before", "graph_break_after"),
    "recompile": ("recompile_after", "recompile_before"),
    "cache": ("cache_cold", "cache_warm"),
}


@pytest.mark.parametrize(
    ("pair", "flags"),
    [
        ("graph_break", ["--max-graph-breaks", "0"]),
        ("recompile", ["--max-recompiles", "0"]),
        ("cache", ["--max-cache-misses", "0"]),
    ],
)
def test_check_fails_the_worse_run_and_passes_the_better(dbs, pair, flags):
    worse, better = WORSE_BETTER[pair]
    bad = tldb("check", dbs[worse], *flags)
    assert bad.exit_code == 1, bad.output
    assert bad.stdout.startswith(f"FAIL {flags[0].removeprefix('--')}: ")
    good = tldb("check", dbs[better], *flags)
    assert good.exit_code == 0, good.output
    assert "FAIL" not in good.output


@pytest.mark.parametrize("pair", list(WORSE_BETTER))
def test_check_against_a_baseline(dbs, pair):
    worse, better = WORSE_BETTER[pair]
    assert tldb("check", dbs[worse], "--baseline", dbs[better]).exit_code == 1
    assert tldb("check", dbs[better], "--baseline", dbs[worse]).exit_code == 0


def test_check_limits_from_toml_and_junit(dbs, tmp_path):
    before, after = (dbs[n] for n in PAIRS["graph_break"])
    limits = tmp_path / "limits.toml"
    limits.write_text(
        f'[check]\nmax-graph-breaks = 0\nno-failures = true\nbaseline = "{after}"\n',
        encoding="utf-8",
    )
    junit = tmp_path / "junit.xml"
    result = tldb("check", before, "--limits", limits, "--junit", junit)
    assert result.exit_code == 1, result.output
    violated = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert violated == ["FAIL max-graph-breaks", "FAIL baseline-graph-breaks"]
    root = ElementTree.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {
        "max-graph-breaks",
        "no-failures",
        "baseline-graph-breaks",
        "baseline-recompiles",
        "baseline-failures",
        "baseline-cache-misses",
    }
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {"max-graph-breaks", "baseline-graph-breaks"}
    assert (suite.get("tests"), suite.get("failures")) == ("6", "2")
    # a flag wins over the file
    loose = tldb("check", before, "--limits", limits, "--max-graph-breaks", "1")
    assert [ln.split(":")[0] for ln in loose.stdout.splitlines()] == ["FAIL baseline-graph-breaks"]
    assert tldb("check", after, "--limits", limits, "--junit", junit).exit_code == 0
    assert ElementTree.parse(junit).getroot().find("testsuite").get("failures") == "0"


def test_check_refuses_bad_limits(dbs, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("max-graph-breaks = 'none'\n", encoding="utf-8")
    result = tldb("check", dbs["guard_before"], "--limits", bad)
    assert result.exit_code == 1 and "wrong type" in result.output
    bad.write_text("max-graph-brakes = 1\n", encoding="utf-8")
    assert "unknown limit" in tldb("check", dbs["guard_before"], "--limits", bad).output
    assert "no limit given" in tldb("check", dbs["guard_before"]).output


def test_compile_time_noise_threshold_and_ranking():
    """A phase is reported when it moved by at least min_seconds AND min_ratio; regressions
    come first, the biggest absolute change first."""
    a = RunFacts(phases={"total": 10.0, "dynamo": 4.0, "inductor": 5.0, "aot_autograd": 1.0})
    b = RunFacts(phases={"total": 10.4, "dynamo": 5.0, "inductor": 3.0, "aot_autograd": 3.0})
    diff = diff_runs(a, b)  # defaults: 0.5 s and 10%
    # total: +0.4 s (under 0.5 s); the three others moved by 1-2 s and 25-200%
    assert [(p.phase, p.delta) for p in diff.phases] == [
        ("aot_autograd", 2.0),
        ("dynamo", 1.0),
        ("inductor", -2.0),
    ]
    strict = diff_runs(a, b, Threshold(min_seconds=0.1, min_ratio=0.5))
    assert [p.phase for p in strict.phases] == ["aot_autograd"]  # +200%; dynamo is +25%
    assert diff_runs(a, a).phases == []


def test_failures_new_and_fixed_and_no_failures_limit(dbs, tmp_path):
    """dynamo.log's fullgraph compile fails (tests/data/README.md); a run without it has none."""
    failing = RunFacts()
    failing.failures[("Unsupported", "graph break under fullgraph", "m.py:3")] += 1
    fixed = diff_runs(failing, RunFacts())
    assert [(c.status, c.a, c.b) for c in fixed.failures] == [("fixed", 1, 0)]
    assert [c.status for c in diff_runs(RunFacts(), failing).failures] == ["new"]
    dynamo = data_path("torch213/dynamo.log")
    bad = tldb("check", dynamo, "--no-failures")
    assert bad.exit_code == 1 and bad.stdout.startswith("FAIL no-failures: 1 failed compile(s)")
    assert tldb("check", dbs["graph_break_after"], "--no-failures").exit_code == 0


def test_untrusted_text_is_escaped_in_html_and_junit(tmp_path):
    """Names and reasons come from the log: they are text in the page and in the XML."""
    log = tmp_path / "evil.log"
    meta = (
        '{"compilation_metrics": {"co_name": "<img src=x onerror=alert(1)>", '
        '"fail_type": "<script>alert(2)</script>", "fail_reason": "a\\u0001b"}, '
        '"frame_id": 0, "frame_compile_id": 0, "attempt": 0}'
    )
    log.write_text(f"V1130 05:42:42.000000 1 x.py:1] {meta}\n", encoding="utf-8")
    empty = tmp_path / "empty.log"
    empty.write_text("", encoding="utf-8")
    page = tmp_path / "diff.html"
    assert tldb("diff", log, empty, "--html", page).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    junit = tmp_path / "junit.xml"
    assert tldb("check", log, "--no-failures", "--junit", junit).exit_code == 1
    failure = ElementTree.parse(junit).getroot().find("testsuite/testcase/failure")
    assert "<script>alert(2)</script>" in failure.get("message")
