"""Compilation metrics pages, failures_and_restarts.html and the index's failures section.

Ports tlparse's conformance tests 1 to 7 as CLI tests (extended: they read tlparse's inputs),
compares the pages with the reference line for line (whole lines, in order, and every link) on
the in-repo torch 2.13 logs, on tlparse's inputs (extended) and on a generated log (output-file
snapshot quirk, stack lookup, tables shown once, times shown only when non-zero), and covers
what tldb does where tlparse aborts (a failure type without a reason) or lets log text through
unescaped.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import data_path, run_tldb
from tlparse_parity import compare_trees, html_lines, page_links
from torch213_log import envelopes

INPUTS = "tlparse-tests/inputs"
PAGES = re.compile(r"(bwd_|aot_autograd_backward_)?compilation_metrics_\d+\.html$|failures_and")
METRICS_KINDS = (
    "compilation_metrics",
    "bwd_compilation_metrics",
    "aot_autograd_backward_compilation_metrics",
)
FAILURES_TITLE = "Failures and Restarts"


def report(log: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    return run_tldb("report", str(log), "-o", str(out), "--no-browser", *flags)


def reference(oracle: list[str], log: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [*oracle, str(log), "-o", str(out), "--no-browser", *flags]
    return subprocess.run(command, capture_output=True)


def files_of(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def cid(frame: int, fcid: int | None = 0, attempt: int | None = 0) -> dict:
    parts = {"frame_id": frame, "frame_compile_id": fcid, "attempt": attempt}
    return {k: v for k, v in parts.items() if v is not None}


def frames(*names: str) -> list[dict]:
    return [{"filename": 0, "line": 5 + i, "name": n, "loc": n + "()"} for i, n in enumerate(names)]


# tlparse's tests/integration_test.rs, tests 1 to 7: log, strict, expected output prefixes.
CONFORMANCE = {
    "test_parse_simple": (
        "simple.log",
        True,
        [
            "-_0_0_0/aot_forward_graph",
            "-_0_0_0/dynamo_output_graph",
            "index.html",
            "compile_directory.json",
            "failures_and_restarts.html",
            "-_0_0_0/inductor_post_grad_graph",
            "-_0_0_0/inductor_output_code",
        ],
    ),
    "test_parse_simple_corrupted_json": (
        "simple_corrupted_json.log",
        False,
        ["-_0_0_0/dynamo_output_graph", "index.html", "failures_and_restarts.html"],
    ),
    "test_parse_compilation_metrics": (
        "comp_metrics.log",
        True,
        [
            *(
                f"{d}/{k}"
                for d in ("-_0_0_1", "-_1_0_1", "-_2_0_0")
                for k in ("dynamo_output_graph", "compilation_metrics")
            ),
            "index.html",
            "compile_directory.json",
            "failures_and_restarts.html",
        ],
    ),
    "test_parse_compilation_failures": (
        "comp_failure.log",
        True,
        [
            "-_0_0_0/dynamo_output_graph",
            "-_0_0_0/compilation_metrics",
            "index.html",
            "compile_directory.json",
            "failures_and_restarts.html",
        ],
    ),
    "test_parse_artifact": ("artifacts.log", True, ["-_0_0_0/fx_graph_cache_hash", "index.html"]),
    "test_parse_chromium_event": (
        "chromium_events.log",
        True,
        ["chromium_events.json", "index.html"],
    ),
    "test_cache_hit_miss": (
        "cache_hit_miss.log",
        True,
        [
            "-_1_0_0/fx_graph_cache_miss_33.json",
            "-_1_0_0/fx_graph_cache_miss_9.json",
            "-_1_0_0/fx_graph_cache_hit_20.json",
            "compile_directory.json",
            "index.html",
        ],
    ),
}


@pytest.mark.extended
@pytest.mark.parametrize("name", CONFORMANCE)
def test_conformance(corpus, tmp_path, name):
    log, strict, prefixes = CONFORMANCE[name]
    out = tmp_path / "out"
    result = report(corpus / INPUTS / log, out, *(["--strict"] if strict else []))
    assert result.returncode == 0, result.stderr
    files = files_of(out)
    for prefix in prefixes:
        assert any(f.startswith(prefix) for f in files), prefix


def expected_lines(rel: str, theirs: list[str]) -> list[str]:
    """The text lines tldb's page must have: tlparse's, every one, whole and in order.

    The only difference is on failures_and_restarts.html, where tlparse has a <title> but no
    heading and tldb adds an <h1> with the same words below the title.
    """
    if rel == "failures_and_restarts.html":
        assert theirs[:1] == [FAILURES_TITLE], rel
        return [FAILURES_TITLE, FAILURES_TITLE, *theirs[1:]]
    return theirs


#: Sections of tlparse's later versions that tldb adds at the end of a compilation metrics
#: page when the log has their input (tests/test_metrics_tables.py covers them).
LATER_SECTIONS = ("Created Symbols", "Other Metrics")


def without_later_sections(lines: list[str]) -> list[str]:
    """A page's text lines without the later versions' trailing sections."""
    cut = [lines.index(title) for title in LATER_SECTIONS if title in lines]
    return lines[: min(cut)] if cut else lines


def assert_pages_match_reference(ref: Path, ours: Path) -> int:
    """Every metrics/failures page tlparse wrote exists in tldb's tree with exactly tlparse's
    text lines (a line compared whole: `Guard Count: 9` is not `Guard Count: 97`) and links.
    Returns the number of pages compared."""
    checked = 0
    for page in sorted(ref.rglob("*.html")):
        rel = page.relative_to(ref).as_posix()
        if not PAGES.search(rel):
            continue
        got = without_later_sections(html_lines(ours / rel))
        assert got == expected_lines(rel, html_lines(page)), rel
        assert page_links(ours / rel) == page_links(page), rel
        checked += 1
    return checked


def metrics_pages(name: str) -> int:
    """tlparse writes one page per (bwd_/aot_autograd_backward_)compilation_metrics envelope,
    plus failures_and_restarts.html: counted from the log with plain json."""
    kinds = [kind for kind, _, _ in envelopes(name)]
    return sum(kinds.count(k) for k in METRICS_KINDS) + 1


@pytest.mark.extended
@pytest.mark.parametrize(
    ("log", "flags"),
    [
        (f"{INPUTS}/comp_metrics.log", ()),
        (f"{INPUTS}/comp_failure.log", ()),
        (f"{INPUTS}/simple.log", ()),
        (f"{INPUTS}/simple.log", ("--plain-text",)),
        (f"{INPUTS}/cache_hit_miss.log", ()),
    ],
)
def test_corpus_pages_match_tlparse(corpus, oracle, tmp_path, log, flags):
    """tlparse's own test inputs (its conformance logs)."""
    assert report(corpus / log, tmp_path / "out", *flags).returncode == 0
    assert reference(oracle, corpus / log, tmp_path / "ref", *flags).returncode == 0
    assert assert_pages_match_reference(tmp_path / "ref", tmp_path / "out") >= 2
    assert compare_trees(tmp_path / "ref", tmp_path / "out").missing == []


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        ("dynamo", ()),
        ("dynamo", ("--plain-text",)),
        ("cache_1", ()),
        ("regional", ()),
        ("shapes", ()),
        ("compiled_autograd", ()),
        ("ddp", ()),
    ],
)
def test_torch213_pages_match_tlparse(oracle, tmp_path, name, flags):
    """Real torch 2.13 logs: a restart, a failed compile (fullgraph graph break), a backward
    pass with its bwd_compilation_metrics, Inductor compiles missing the caches, symbolic
    shape specializations and fast guards, compiled autograd ids, DDP's split graphs."""
    log = data_path(f"torch213/{name}.log")
    assert report(log, tmp_path / "out", *flags).returncode == 0
    assert reference(oracle, log, tmp_path / "ref", *flags).returncode == 0
    checked = assert_pages_match_reference(tmp_path / "ref", tmp_path / "out")
    assert checked == metrics_pages(name)
    assert compare_trees(tmp_path / "ref", tmp_path / "out").missing == []


def quirks_log(log_writer, path: Path) -> Path:
    w = log_writer
    w.add({"str": ["/src/model.py", 0]})
    # metrics without an attempt: listed under [0/0], written to -_0_0_-, no stack found
    w.add({"dynamo_start": {"stack": frames("main", "f")}, **cid(0, attempt=None)})
    w.add({"dynamo_output_graph": {}, **cid(0)}, "graph()")
    w.add({"compilation_metrics": {"graph_op_count": 1}, **cid(0, attempt=None)})
    # a restart page [1/0_1] shows the [1/0] stack and the attempt-0 tables, once
    w.add({"dynamo_start": {"stack": frames("main", "g")}, **cid(1)})
    spec = {"symbol": "s0", "sources": ["L['x'].size()[0]", "L['y']"], "value": "3"}
    w.add({"symbolic_shape_specialization": {**spec, "stack": frames("spec")}, **cid(1)})
    w.add({"symbolic_shape_specialization": {"symbol": "never_shown"}, **cid(1, attempt=None)})
    w.add({"guard_added_fast": {"expr": "Eq(s0, 3)", "user_stack": frames("user")}, **cid(1)})
    times = {
        "entire_frame_compile_time_s": 2,
        "backend_compile_time_s": 0,
        "inductor_compile_time_s": 0.0,
        "code_gen_time_s": 1e-06,
        "dynamo_time_before_restart_s": 12345678901234567.0,
    }
    w.add(
        {
            "compilation_metrics": {"restart_reasons": ["graph break in g"], **times},
            **cid(1, attempt=1),
        }
    )
    w.add({"compilation_metrics": {"graph_op_count": 2, "restart_reasons": []}, **cid(1)})
    # links, nested artifacts and dump files make broken "Output files" links in tlparse
    w.add({"link": {"name": "dashboard", "url": "https://example.com/run/1"}, **cid(2)})
    w.add({"artifact": {"name": "nested/name", "encoding": "string"}, **cid(2)}, "x")
    w.add({"dump_file": {"name": "gen.py"}, **cid(2)}, "a = 1")
    failure = {
        "fail_type": "Unsupported",
        "fail_reason": "cannot trace",
        "fail_user_frame_filename": "/src/model.py",
        "fail_user_frame_lineno": 12,
        "co_name": "forward",
        "co_filename": "/src/model.py",
        "co_firstlineno": 3,
        "compliant_custom_ops": ["mylib::ok"],
        "non_compliant_ops": ["mylib::bad"],
    }
    w.add({"compilation_metrics": failure, **cid(2)})
    w.add(
        {"bwd_compilation_metrics": {"inductor_compile_time_s": 4, "code_gen_time_s": 0}, **cid(2)}
    )
    w.add(
        {
            "aot_autograd_backward_compilation_metrics": {
                "start_time": 1.5,
                "fail_type": "E",
                "fail_reason": "r",
            },
            **cid(2),
        }
    )
    return w.write(path)


def test_generated_pages_match_tlparse(oracle, log_writer, tmp_path):
    log = quirks_log(log_writer, tmp_path / "q.log")
    assert report(log, tmp_path / "out").returncode == 0
    assert reference(oracle, log, tmp_path / "ref").returncode == 0
    assert assert_pages_match_reference(tmp_path / "ref", tmp_path / "out") == 7
    assert compare_trees(tmp_path / "ref", tmp_path / "out").missing == []


def metric(lines: list[str], label: str) -> str:
    """The value line shown after a timing label and its `[?]` help marker."""
    at = lines.index(label)
    assert lines[at + 1] == "[?]", label
    return lines[at + 2]


def test_generated_pages_content(log_writer, tmp_path):
    """The quirks of quirks_log, with the values written down by hand (whole lines)."""
    out = tmp_path / "out"
    assert report(quirks_log(log_writer, tmp_path / "q.log"), out).returncode == 0
    no_attempt = out / "-_0_0_-/compilation_metrics_1.html"
    assert (
        '<a href="-_0_0_-/dynamo_output_graph_0.txt">dynamo_output_graph_0.txt</a> (0)'
        in no_attempt.read_text()
    )
    assert "<details>" not in no_attempt.read_text()  # its dynamo_start had no attempt: no stack
    assert "Graph Ops: 1" in html_lines(no_attempt)
    restart = html_lines(out / "-_1_0_1/compilation_metrics_2.html")
    assert restart[1] == "Compilation Info for [1/0_1]"
    assert restart[7:9] == ["/src/model.py:6 in g", "g()"]  # the [1/0] stack
    assert {"s0", "L['x'].size()[0]", "L['y']", "3", "Eq(s0, 3)"} <= set(restart)
    assert not any("never_shown" in line for line in restart)
    assert metric(restart, "Entire Frame") == ": 2.0"
    assert metric(restart, "Backend") == ": 0.0"
    assert metric(restart, "Dynamo Time Before Restart") == ": 1.2345678901234568e16"
    assert "Code Gen Time: 1e-6" in restart
    assert not any(line.startswith("Inductor") for line in restart)  # 0.0: not shown
    assert restart[restart.index("Restart Reasons:") + 1] == "graph break in g"
    second = html_lines(out / "-_1_0_0/compilation_metrics_3.html")
    assert second[7:9] == ["/src/model.py:6 in g", "g()"]
    assert "Graph Ops: 2" in second
    assert "Eq(s0, 3)" not in second and "s0" not in second  # the attempt-0 tables: once
    failed_page = out / "-_2_0_0/compilation_metrics_7.html"
    failed = failed_page.read_text()
    assert '<a href="-_2_0_0/example.comrun1"></a> (4)' in failed
    assert '<a href="-_2_0_0/nestedname_5.txt">nestedname_5.txt</a> (5)' in failed
    assert '<a href="-_2_0_0/gen.py.html">gen.py.html</a> (6)' in failed
    lines = html_lines(failed_page)
    assert lines[2:4] == ["Stack", "/src/model.py:3 in forward"]
    at = lines.index("Failure Exception:")
    assert lines[at : at + 7] == [
        "Failure Exception:",
        "Unsupported",
        "Failure Reason:",
        "cannot trace",
        "In file",
        "/src/model.py",
        ", line 12",
    ]
    assert lines[lines.index("Compliant Custom Ops:") + 1] == "mylib::ok"
    assert lines[lines.index("Non-Compliant Custom Ops:") + 1] == "mylib::bad"
    failures = html_lines(out / "failures_and_restarts.html")
    assert failures[6:] == [
        "[1/0_1]",
        "RestartAnalysis",
        "graph break in g",
        "Not availble for restarts(yet)!",
        "[2/0]",
        "Unsupported",
        "cannot trace",
        "/src/model.py:12",
    ]
    index = (out / "index.html").read_text()
    assert "2 restart(s) and/or compilation failure(s)" in index


def test_no_failures_still_writes_the_table(tmp_path):
    """cache_1.log: two Inductor compiles, neither failed nor restarted."""
    out = tmp_path / "out"
    assert report(data_path("torch213/cache_1.log"), out).returncode == 0
    assert html_lines(out / "failures_and_restarts.html") == [
        FAILURES_TITLE,
        FAILURES_TITLE,
        "Compile Id",
        "Failure Type",
        "Failure Description",
        "Failure Source (compilation failures only)",
    ]
    assert "Failures and Restarts" not in (out / "index.html").read_text()


def test_failure_type_without_reason(oracle, log_writer, tmp_path):
    """tlparse aborts the whole run ("Fail reason not found"); tldb reports the failure."""
    log_writer.add({"compilation_metrics": {"fail_type": "BackendCompilerFailed"}, **cid(0)})
    log = log_writer.write(tmp_path / "f.log")
    out = tmp_path / "out"
    result = report(log, out)
    assert result.returncode == 0, result.stderr
    no_reason = "(the log gives a failure type but no fail_reason)"
    page = html_lines(out / "-_0_0_0/compilation_metrics_0.html")
    at = page.index("Failure Exception:")
    assert page[at : at + 4] == [
        "Failure Exception:",
        "BackendCompilerFailed",
        "Failure Reason:",
        no_reason,
    ]
    failures = html_lines(out / "failures_and_restarts.html")
    assert failures[6:] == ["[0/0]", "BackendCompilerFailed", no_reason, "N/A:0"]
    assert "<pre>BackendCompilerFailed</pre>" in (out / "failures_and_restarts.html").read_text()
    assert "1 restart(s) and/or compilation failure(s)" in (out / "index.html").read_text()
    assert reference(oracle, log, tmp_path / "ref").returncode != 0


def test_log_text_is_escaped(log_writer, tmp_path):
    bad = "<script>alert(1)</script>"
    log_writer.add({"str": [f"/src/{bad}.py", 0]})
    log_writer.add({"dynamo_start": {"stack": frames(bad)}, **cid(0)})
    log_writer.add({"symbolic_shape_specialization": {"symbol": bad, "sources": [bad]}, **cid(0)})
    log_writer.add({"guard_added_fast": {"expr": bad}, **cid(0)})
    metrics = {
        "fail_type": bad,
        "fail_reason": bad,
        "fail_user_frame_filename": bad,
        "restart_reasons": [bad],
        "co_name": bad,
        "co_filename": bad,
        "co_firstlineno": 1,
        "compliant_custom_ops": [bad],
    }
    log_writer.add({"compilation_metrics": metrics, **cid(0)})
    log_writer.add({"bwd_compilation_metrics": {"fail_type": bad, "fail_reason": bad}, **cid(0)})
    out = tmp_path / "out"
    assert report(log_writer.write(tmp_path / "h.log"), out).returncode == 0
    pages = [p for p in out.rglob("*.html") if PAGES.search(p.name)]
    assert len(pages) == 3
    for page in pages:
        text = page.read_text()
        assert "<script>alert" not in text, page.name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, page.name
