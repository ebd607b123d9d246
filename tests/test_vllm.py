"""The vLLM compilation summary (tlparse 0.4.8's, reference §b) on the hand-written vLLM logs
of tests/data/vllm: file names and numbering, the summary's headings, groups and links, the
chained pass diff pages, the vllm_* views and canned queries, and that nothing changes for
logs without vLLM envelopes. Expected values are worked out by hand from the logs (their
envelopes are listed in tests/data/vllm/write_logs.py), never read back from tldb's output."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import yaml
from conftest import DATA
from vllm_pages import Node, parse

from tldb.module_api import ReportConfig
from tldb.report import ReportRequest, run_report
from tldb.resources import metadata_file

LOGS = DATA / "vllm"
_HEADER = re.compile(r"^[VIWEC]\d{4} [^\]]*\] (\{.*)$")


def payloads(log: str) -> list[tuple[dict, str | None]]:
    """(metadata, payload) of each envelope of a log, read with plain json."""
    found: list[tuple[dict, str | None]] = []
    for line in (LOGS / log).read_text(encoding="utf-8").splitlines():
        if line.startswith("\t"):
            meta, payload = found[-1]
            found[-1] = (meta, line[1:] if payload is None else payload + "\n" + line[1:])
        elif match := _HEADER.match(line):
            found.append((json.loads(match.group(1)), None))
    return found


def dump_payload(log: str, name: str, nth: int = 0) -> str:
    texts = [p for m, p in payloads(log) if m.get("graph_dump", {}).get("name") == name]
    return texts[nth]


def artifact_payload(log: str, name: str) -> str:
    return next(p for m, p in payloads(log) if m.get("artifact", {}).get("name") == name)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vllm")
    out = {}
    for log in ("piecewise", "compile_calls", "two_models"):
        config = ReportConfig(custom_header_html="<p id='hdr'>Team header</p>")
        run_report(ReportRequest(source=LOGS / f"{log}.log", out_dir=root / log, config=config))
        out[log] = root / log
    return out


def files(report: Path) -> set[str]:
    return {p.relative_to(report).as_posix() for p in report.rglob("*") if p.is_file()}


def compile_files(report: Path) -> list[str]:
    """Files of the compile folders, by their number (the global counter)."""
    named = [f for f in files(report) if f.startswith("-_")]
    return sorted(named, key=lambda f: int(re.search(r"_(\d+)\.\w+$", f).group(1)))


# ---------------------------------------------------------------- names and numbering


def test_piecewise_files_have_tlparses_names_and_numbers(reports):
    # One number per output in log order; the configuration twice (generic artifact copy,
    # then vLLM's pretty copy); vllm_* dumps as .txt; entries without compile id in -_-_-_-.
    assert compile_files(reports["piecewise"]) == [
        "-_0_0_0/dynamo_output_graph_0.txt",
        "-_0_0_0/vllm_compilation_config_1.json",
        "-_0_0_0/vllm_compilation_config_2.json",
        "-_0_0_0/vllm_piecewise_split_graph_3.txt",
        "-_0_0_0/dynamo_cpp_guards_str_4.txt",
        "-_0_0_0/compilation_metrics_5.html",
        "-_-_-_-/vllm_piecewise_compile_start_6.json",
        "-_-_-_-/vllm_submod_0_7.txt",
        "-_-_-_-/inductor_post_grad_graph_8.txt",
        "-_-_-_-/vllm_piecewise_compile_start_9.json",
        "-_-_-_-/vllm_submod_2_10.txt",
        "-_-_-_-/fx_graph_cache_hit_11.json",
        "-_-_-_-/vllm_piecewise_compile_start_12.json",
        "-_-_-_-/vllm_subgraph_0_size_4_13.txt",
        "-_-_-_-/vllm_piecewise_compile_start_14.json",
        "-_-_-_-/vllm_piecewise_compile_start_15.json",
        "-_-_-_-/vllm_piecewise_compile_start_16.json",
    ]
    report = reports["piecewise"]
    config = json.loads(artifact_payload("piecewise.log", "vllm_compilation_config"))
    for name in ("vllm_compilation_config_1.json", "vllm_compilation_config_2.json"):
        assert json.loads((report / "-_0_0_0" / name).read_text()) == config
    assert (report / "-_-_-_-/vllm_submod_2_10.txt").read_text() == dump_payload(
        "piecewise.log", "vllm_submod_2"
    )


def test_pass_files_patterns_and_diff_pages_are_numbered_in_the_plan(reports):
    # compile_calls.log: the event, Dynamo part (5 envelopes, 6 files), patterns (.py), a
    # compile start, a submodule, the baseline (before_post_grad_graph), three passes: each
    # pass graph .txt, then its diff page (unnumbered name, but it takes a number).
    listed = json.loads((reports["compile_calls"] / "compile_directory.json").read_text())
    entries = {e["url"]: e["number"] for entries in listed.values() for e in entries["artifacts"]}
    assert entries["-_0_0_0/vllm_patterns.RMSNormQuantFusionPass_7.py"] == 7
    assert entries["-_-_-_-/before_post_grad_graph_10.txt"] == 10
    assert entries["-_-_-_-/vllm_post_grad.0.RMSNormQuantFusionPass_11.txt"] == 11
    assert entries["-_-_-_-/vllm_post_grad.0.RMSNormQuantFusionPass.diff.html"] == 12
    assert entries["-_-_-_-/vllm_post_grad.1.NoOpEliminationPass_13.txt"] == 13
    assert entries["-_-_-_-/vllm_post_grad.1.NoOpEliminationPass.diff.html"] == 14
    assert entries["-_-_-_-/vllm_post_grad.2.FixFunctionalizationPass.diff.html"] == 16
    assert not any(url.endswith("vllm_patterns.RMSNormQuantFusionPass_7.txt") for url in entries)
    assert (
        reports["compile_calls"] / "-_0_0_0/vllm_patterns.RMSNormQuantFusionPass_7.py"
    ).read_text() == dump_payload("compile_calls.log", "vllm_patterns.RMSNormQuantFusionPass")


def test_usual_index_moves_to_tlparse_index(reports):
    for report in reports.values():
        usual = parse(report / "tlparse_index.html")
        # The usual index lists every compile folder's files, the vLLM ones included.
        hrefs = {href for _, href in usual.links()}
        assert "-_0_0_0/vllm_piecewise_split_graph_3.txt" in hrefs or report.name != "piecewise"
        assert any(h.startswith("-_0_0_0/dynamo_output_graph_") for h in hrefs)
        summary = parse(report / "index.html")
        assert summary.all("h1")[0].text() == "vLLM Compilation Summary"
        assert summary.all("title")[0].text() == "vLLM Compilation Summary"
        assert ("View original tlparse output →", "tlparse_index.html") in summary.links()
        # The custom header comes first, unescaped, as on tlparse's pages.
        body = summary.all("body")[0]
        assert body.kids("p")[0].attrs["id"] == "hdr"


# ---------------------------------------------------------------- the summary page


def _h2s(node: Node) -> list[str]:
    return [h.text() for h in node.all("h2")]


def _settings(node: Node) -> dict[str, str]:
    rows = {}
    for row in node.all("tr"):
        cells = row.kids("td")
        if len(cells) == 2:
            rows[cells[0].text()] = cells[1].text()
    return rows


def _groups(node: Node) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """{h3 group: {h4 subgraph: links}} of the Inductor Compilation section."""
    found: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for box in node.all("div"):
        if box.attrs.get("class") != "range":
            continue
        subgraphs: dict[str, list[tuple[str, str]]] = {}
        for item in box.all("div"):
            if item.attrs.get("class") == "subgraph":
                subgraphs.setdefault(item.all("h4")[0].text(), []).extend(item.links())
        found[box.all("h3")[0].text()] = subgraphs
    return found


def test_single_call_summary(reports):
    page = parse(reports["piecewise"] / "index.html")
    # One compile call: no call blocks, the sections in tlparse's order.
    assert _h2s(page) == [
        "Compilation Configuration",
        "Dynamo Compilation",
        "Piecewise Split Graph",
        "Inductor Compilation",
    ]
    assert [s.text() for s in page.all("summary")][:2] == ["Core Settings", "Compile Settings"]
    settings = _settings(page)
    assert list(settings) == [
        "Model",
        "Mode",
        "Backend",
        "Prefix",
        "Custom Ops",
        "Splitting Ops",
        "CUDAGraph Mode",
        "Use Inductor Graph Partition",
        "Compile Sizes",
        "Compile Ranges Endpoints",
        "Inductor Passes",
        "Enabled Passes",
        "Dynamic Shapes Type",
        "Dynamic Shapes Evaluate Guards",
    ]
    assert settings["Model"] == "acme/tiny-llama-2l"
    assert settings["Prefix"] == "backbone"
    assert settings["Compile Sizes"] == "4, 8"
    # The log names the new field compile_ranges_endpoints: shown in the split-points row.
    assert settings["Compile Ranges Endpoints"] == "8192"
    assert settings["Use Inductor Graph Partition"] == "false"
    assert settings["Dynamic Shapes Evaluate Guards"] == "true"
    assert settings["Inductor Passes"] == ""
    links = page.links()
    assert ("Chromium Trace Events", "chromium_events.json") in links
    assert ("Perfetto", "https://ui.perfetto.dev/") in links
    assert ("vllm_piecewise_split_graph", "-_0_0_0/vllm_piecewise_split_graph_3.txt") in links
    dynamo = [(t, h) for t, h in links if h.startswith("-_0_0_0/") and "vllm" not in h]
    assert dynamo == [
        ("dynamo_output_graph_0", "-_0_0_0/dynamo_output_graph_0.txt"),
        ("dynamo_cpp_guards_str_4", "-_0_0_0/dynamo_cpp_guards_str_4.txt"),
        ("compilation_metrics_5", "-_0_0_0/compilation_metrics_5.html"),
    ]
    groups = _groups(page)
    # Groups in first-seen order; a size is `size N`, else `range [start, end]`.
    assert list(groups) == ["range [1, 8192]", "size 4", "size 8"]
    # A compile start without submod_name shows as subgraph_<piecewise_index>; the start
    # without piecewise_index is not a compile start tlparse accepts, so size 8 has one.
    assert {k: list(v) for k, v in groups.items()} == {
        "range [1, 8192]": ["submod_0", "submod_2"],
        "size 4": ["submod_0", "subgraph_1"],
        "size 8": ["submod_0"],
    }
    # Each file is filed under the compile start before it (the generic copy of a compile
    # start is written before the vLLM parser starts the new subgraph).
    range_group = groups["range [1, 8192]"]
    assert [t for t, _ in range_group["submod_0"]] == [
        "vllm_submod_0_7",
        "inductor_post_grad_graph_8",
        "vllm_piecewise_compile_start_9",
    ]
    assert range_group["submod_2"][:2] == [
        ("vllm_submod_2_10", "-_-_-_-/vllm_submod_2_10.txt"),
        ("fx_graph_cache_hit_11", "-_-_-_-/fx_graph_cache_hit_11.json"),
    ]
    submods = {
        s.all("h4")[0].text(): s for s in page.all("div") if s.attrs.get("class") == "subgraph"
    }
    # The cache icon of a file whose name says cache_hit.
    assert "fx_graph_cache_hit_11 ✅" in submods["submod_2"].text()
    # Open blocks: the settings, then per group its subgraphs, per subgraph its files.
    assert [s.text() for s in page.all("summary")] == [
        "Core Settings",
        "Compile Settings",
        "Subgraphs (2)",
        "Artifacts (3 files)",
        "Artifacts (3 files)",
        "Subgraphs (2)",
        "Artifacts (2 files)",
        "Artifacts (1 files)",
        "Subgraphs (1)",
        "Artifacts (1 files)",
    ]


def _calls(page: Node) -> list[Node]:
    return [d for d in page.all("details") if d.attrs.get("class") == "call"]


def test_several_compile_calls_with_a_shared_configuration_and_a_cache_hit(reports):
    page = parse(reports["compile_calls"] / "index.html")
    # Both configurations are equal: shown once, before the calls, and not in each call.
    assert _h2s(page).count("Compilation Configuration (shared)") == 1
    assert "Compilation Configuration" not in _h2s(page)
    calls = _calls(page)
    assert [c.kids("summary")[0].text() for c in calls] == [
        "Compile Call 1: backbone",  # fresh_compile: no mark
        "Compile Call 2: backbone ✅",  # aot_cache_hit, logged before its configuration
    ]
    assert ["open" in c.attrs for c in calls] == [True, False]
    first = calls[0]
    assert [h.text() for h in first.all("h2")][1:] == [
        "Dynamo Compilation",
        "Piecewise Split Graph",
        "Inductor Pass Patterns",
        "Inductor Compilation",
    ]
    assert (
        "vllm_patterns.RMSNormQuantFusionPass_7",
        "-_0_0_0/vllm_patterns.RMSNormQuantFusionPass_7.py",
    ) in first.links()
    # Pass graphs and diffs of a subgraph are in their own, closed, block.
    submod = next(
        s for s in first.all("div") if s.attrs.get("class") == "subgraph" and "submod_0" in s.text()
    )
    blocks = {d.kids("summary")[0].text(): d for d in submod.kids("details")}
    passes = blocks["Inductor Pass Graphs & Diffs (6 files)"]
    assert "open" not in passes.attrs and "open" in blocks["Artifacts (3 files)"].attrs
    assert [h for _, h in passes.links()] == [
        "-_-_-_-/vllm_post_grad.0.RMSNormQuantFusionPass_11.txt",
        "-_-_-_-/vllm_post_grad.0.RMSNormQuantFusionPass.diff.html",
        "-_-_-_-/vllm_post_grad.1.NoOpEliminationPass_13.txt",
        "-_-_-_-/vllm_post_grad.1.NoOpEliminationPass.diff.html",
        "-_-_-_-/vllm_post_grad.2.FixFunctionalizationPass_15.txt",
        "-_-_-_-/vllm_post_grad.2.FixFunctionalizationPass.diff.html",
    ]
    second = calls[1]
    assert [h.text() for h in second.all("h2")][1:] == [
        "Dynamo Compilation",
        "Piecewise Split Graph",
        "Inductor Compilation",
    ]
    assert ("vllm_piecewise_split_graph", "-_1_0_0/vllm_piecewise_split_graph_23.txt") in (
        second.links()
    )


def test_calls_with_different_configurations_show_their_own(reports):
    page = parse(reports["two_models"] / "index.html")
    assert "Compilation Configuration (shared)" not in _h2s(page)
    calls = _calls(page)
    assert [c.kids("summary")[0].text() for c in calls] == [
        "Compile Call 1: backbone",
        "Compile Call 2: eagle_head",
    ]
    assert [_settings(c)["Prefix"] for c in calls] == ["backbone", "eagle_head"]


# ---------------------------------------------------------------- pass diff pages


def _diff_rows(page: Node) -> list[list[Node]]:
    return [r.kids("td") for r in page.all("tr")]


def _sides(page: Node) -> tuple[dict[int, str], dict[int, str]]:
    """Old and new lines shown on a diff page, by line number."""
    old, new = {}, {}
    for cells in _diff_rows(page):
        if len(cells) == 4:
            if cells[0].text():
                old[int(cells[0].text())] = cells[1].text()
            if cells[2].text():
                new[int(cells[2].text())] = cells[3].text()
    return old, new


def _numbered(text: str) -> dict[int, str]:
    return {n: " ".join(line.split()) for n, line in enumerate(text.split("\n"), 1)}


def test_pass_diffs_chain_pass_after_pass(reports):
    report = reports["compile_calls"] / "-_-_-_-"
    log = "compile_calls.log"
    before = artifact_payload(log, "before_post_grad_graph")
    fusion = dump_payload(log, "vllm_post_grad.0.RMSNormQuantFusionPass")
    noop = dump_payload(log, "vllm_post_grad.1.NoOpEliminationPass")
    fixed = dump_payload(log, "vllm_post_grad.2.FixFunctionalizationPass")
    pages = [
        ("0.RMSNormQuantFusionPass", before, fusion),
        ("1.NoOpEliminationPass", fusion, noop),  # against the previous pass, not the start
    ]
    for name, old_text, new_text in pages:
        page = parse(report / f"vllm_post_grad.{name}.diff.html")
        assert page.all("h1")[0].text() == f"Pass Diff: {name}"
        assert page.all("title")[0].text() == f"Pass Diff: {name}"
        old, new = _sides(page)
        # Every line shown is the line of that number in the graph before / after the pass.
        assert old and new
        assert all(_numbered(old_text)[n] == text for n, text in old.items())
        assert all(_numbered(new_text)[n] == text for n, text in new.items())
        pairs = [c for c in _diff_rows(page) if len(c) == 4]
        deleted = {c[1].text() for c in pairs if "diff-del" in c[1].attrs["class"]}
        added = {c[3].text() for c in pairs if "diff-add" in c[3].attrs["class"]}
        gone = set(_numbered(old_text).values()) - set(_numbered(new_text).values())
        came = set(_numbered(new_text).values()) - set(_numbered(old_text).values())
        assert deleted == gone and added == came
        hunks = [c[0].text() for c in _diff_rows(page) if len(c) == 1]
        assert hunks and all(re.fullmatch(r"@@ -\d+(,\d+)? \+\d+(,\d+)? @@", h) for h in hunks)
    # The last pass changed nothing.
    assert fixed == noop
    unchanged = parse(report / "vllm_post_grad.2.FixFunctionalizationPass.diff.html")
    assert unchanged.text().endswith("(no changes)")
    assert unchanged.all("table") == []


def test_pass_chain_starts_again_in_a_new_compile_call(reports):
    # two_models.log: call 1 has a baseline and three passes; call 2 (a new configuration)
    # logs the same passes without a before_post_grad_graph: its first pass has no diff page
    # (tlparse forgets the baseline at a new call), its second is diffed against its first.
    report = reports["two_models"] / "-_-_-_-"
    txt = sorted(p.name for p in report.glob("vllm_post_grad.0.*_*.txt"))
    assert len(txt) == 2
    pages = sorted(p.name for p in report.glob("*.diff.html"))
    assert pages == [
        "vllm_post_grad.0.RMSNormQuantFusionPass.diff.html",
        "vllm_post_grad.1.NoOpEliminationPass.diff.html",
        "vllm_post_grad.2.FixFunctionalizationPass.diff.html",
    ]
    listed = json.loads((reports["two_models"] / "compile_directory.json").read_text())
    urls = [e["url"] for entries in listed.values() for e in entries["artifacts"]]
    # Diff pages keep their name: call 2's pages replace call 1's, listed once per call
    # except the first pass of call 2.
    assert urls.count("-_-_-_-/vllm_post_grad.0.RMSNormQuantFusionPass.diff.html") == 1
    assert urls.count("-_-_-_-/vllm_post_grad.1.NoOpEliminationPass.diff.html") == 2


# ---------------------------------------------------------------- logs without vLLM


def _report(tmp_path: Path, log: Path) -> Path:
    out = tmp_path / "out"
    run_report(ReportRequest(source=log, out_dir=out))
    return out


def _artifact(name: str) -> dict:
    return {"artifact": {"name": name, "encoding": "json"}, "frame_id": 0, "frame_compile_id": 0}


def test_no_summary_without_vllm_artifacts(tmp_path, log_writer):
    # A compile event or a pass baseline alone do not make a vLLM log (reference §b.1).
    log_writer.add(_artifact("vllm_compile_event"), '{"type": "fresh_compile"}')
    log_writer.add(
        {"artifact": {"name": "before_post_grad_graph", "encoding": "string"}}, "def f(): pass"
    )
    log_writer.add({"graph_dump": {"name": "my_graph"}, "frame_id": 0}, "graph()")
    out = _report(tmp_path, log_writer.write(tmp_path / "plain.log"))
    assert not (out / "tlparse_index.html").exists()
    assert "vLLM Compilation Summary" not in (out / "index.html").read_text()
    # The generic graph_dump file, as tlparse 0.4.3 writes it.
    assert [p.name for p in out.rglob("my_graph_*")] == ["my_graph_2.txt"]


def test_a_compile_start_alone_makes_a_summary(tmp_path, log_writer):
    start = {
        "piecewise_index": 3,
        "compile_range_start": 16,
        "compile_range_end": 16,
        "is_single_size": True,
        "is_cudagraph_capture_size": False,
    }
    log_writer.add(
        {"artifact": {"name": "vllm_piecewise_compile_start", "encoding": "json"}},
        json.dumps(start),
    )
    out = _report(tmp_path, log_writer.write(tmp_path / "start.log"))
    page = parse(out / "index.html")
    assert _h2s(page) == ["Inductor Compilation"]  # no config, Dynamo or split graph
    assert list(_groups(page)) == ["size 16"]
    assert list(_groups(page)["size 16"]) == ["subgraph_3"]
    assert (out / "tlparse_index.html").is_file()


def test_malformed_configurations(tmp_path, log_writer):
    # A number where tlparse reads text: not a configuration (no table), both files written.
    log_writer.add(_artifact("vllm_compilation_config"), json.dumps({"model": 7}))
    # Not JSON: vLLM's pretty copy fails (no file, no number); no summary from it.
    log_writer.add(_artifact("vllm_compilation_config"), "{not json")
    log_writer.add({"graph_dump": {"name": "vllm_submod_1"}}, "<graph> & stuff")
    out = _report(tmp_path, log_writer.write(tmp_path / "bad.log"))
    names = sorted(p.name for p in (out / "-_0_0_-").iterdir())
    assert names == [
        "vllm_compilation_config_0.json",
        "vllm_compilation_config_1.json",
        "vllm_compilation_config_2.json",
    ]
    page = parse(out / "index.html")
    assert page.all("h1")[0].text() == "vLLM Compilation Summary"  # the submodule dump
    assert "Compilation Configuration" not in _h2s(page)
    assert (out / "-_-_-_-" / "vllm_submod_1_3.txt").read_text() == "<graph> & stuff"


def test_log_text_is_escaped(tmp_path, log_writer):
    config = {"model": "<script>alert(1)</script>", "prefix": "<b>x</b>"}
    log_writer.add(_artifact("vllm_compilation_config"), json.dumps(config))
    log_writer.add(_artifact("before_post_grad_graph"), "x = 1")
    log_writer.add({"graph_dump": {"name": "vllm_post_grad.0.<b>P"}}, "<script>y</script>")
    out = _report(tmp_path, log_writer.write(tmp_path / "esc.log"))
    text = (out / "index.html").read_text()
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>x</b>" not in text and "<b>P" not in text
    diff = (out / "-_-_-_-" / "vllm_post_grad.0.<b>P.diff.html").read_text()
    assert "Pass Diff: 0.&lt;b&gt;P" in diff
    assert "<script>y" not in diff and "&lt;script&gt;y&lt;/script&gt;" in diff


# ---------------------------------------------------------------- database views


def _db(report: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(report / "trace.db")
    conn.row_factory = sqlite3.Row
    return conn


def _canned(name: str) -> str:
    metadata = yaml.safe_load(metadata_file().read_text(encoding="utf-8"))
    return metadata["databases"]["trace"]["queries"][name]["sql"]


def test_views_per_vllm_kind(reports):
    conn = _db(reports["compile_calls"])
    configs = conn.execute(
        "SELECT compile_call, model, prefix, compile_ranges_split_points, "
        "dynamic_shapes_evaluate_guards FROM vllm_compilation_configs ORDER BY line"
    ).fetchall()
    assert [tuple(r) for r in configs] == [
        (1, "acme/tiny-llama-2l", "backbone", "8192", 1),
        (2, "acme/tiny-llama-2l", "backbone", "8192", 1),
    ]
    events = conn.execute("SELECT event_type, for_compile_call FROM vllm_compile_events")
    assert [tuple(r) for r in events] == [("fresh_compile", 1), ("aot_cache_hit", 2)]
    graphs = conn.execute("SELECT name, compile_call FROM vllm_graphs ORDER BY line")
    assert [tuple(r) for r in graphs] == [
        ("vllm_piecewise_split_graph", 1),
        ("vllm_submod_0", 1),
        ("vllm_submod_2", 1),
        ("vllm_piecewise_split_graph", 2),
    ]
    patterns = conn.execute("SELECT pass_name, pattern_file FROM vllm_patterns").fetchall()
    assert [tuple(r) for r in patterns] == [
        ("RMSNormQuantFusionPass", "-_0_0_0/vllm_patterns.RMSNormQuantFusionPass_7.py")
    ]
    passes = conn.execute("SELECT pass_index, pass_name FROM vllm_pass_graphs ORDER BY line")
    assert [tuple(r) for r in passes] == [
        (0, "RMSNormQuantFusionPass"),
        (1, "NoOpEliminationPass"),
        (2, "FixFunctionalizationPass"),
    ]
    piecewise = _db(reports["piecewise"]).execute(
        "SELECT subgraph, size_or_range, is_single_size FROM vllm_piecewise_compiles "
        "WHERE size_or_range IS NOT NULL ORDER BY line"
    )
    assert [tuple(r) for r in piecewise] == [
        ("submod_0", "range [1, 8192]", 0),
        ("submod_2", "range [1, 8192]", 0),
        ("submod_0", "size 4", 1),
        ("subgraph_1", "size 4", 1),
        ("submod_0", "size 8", 1),
    ]


def test_canned_query_subgraphs_per_range(reports):
    rows = _db(reports["piecewise"]).execute(_canned("vllm_subgraphs_per_range")).fetchall()
    assert [
        (r["compile_call"], r["size_or_range"], r["compiles"], r["subgraphs"]) for r in rows
    ] == [
        (1, "range [1, 8192]", 2, "submod_0, submod_2"),
        (1, "size 4", 2, "submod_0, subgraph_1"),
        (1, "size 8", 1, "submod_0"),
    ]
    rows = _db(reports["compile_calls"]).execute(_canned("vllm_subgraphs_per_range")).fetchall()
    assert [(r["compile_call"], r["size_or_range"], r["subgraphs"]) for r in rows] == [
        (1, "range [1, 8192]", "submod_0, submod_2"),
        (2, "range [1, 8192]", "submod_0"),
    ]


def test_canned_query_pass_diffs_per_subgraph(reports):
    rows = _db(reports["two_models"]).execute(_canned("vllm_pass_diffs_per_subgraph")).fetchall()
    assert [
        (r["compile_call"], r["size_or_range"], r["subgraph"], r["pass_index"], r["pass_name"])
        for r in rows
    ] == [
        (call, "range [1, 8192]", "submod_0", index, name)
        for call in (1, 2)
        for index, name in enumerate(
            ["RMSNormQuantFusionPass", "NoOpEliminationPass", "FixFunctionalizationPass"]
        )
    ]
    # Call 2's first pass had no baseline: no diff page; every page named exists.
    assert [r["diff_page"] is None for r in rows] == [False, False, False, True, False, False]
    for row in rows:
        for column in ("diff_page", "graph_file"):
            if row[column]:
                assert (reports["two_models"] / row[column]).is_file()


# ---------------------------------------------------------------- tlparse's own inputs


def _prefixed(out: Path, prefixes: tuple[str, ...]) -> None:
    names = files(out)
    for prefix in prefixes:
        assert any(n.startswith(prefix) for n in names), prefix


@pytest.mark.extended
def test_tlparse_vllm_sample(corpus, tmp_path):
    """tlparse's test_parse_vllm_sample, on its input (reference §f)."""
    out = _report(tmp_path, corpus / "tlparse-048" / "vllm_sample.log")
    prefixes = ("-_0_0_0/vllm_compilation_config", "-_0_0_0/vllm_piecewise_split_graph")
    _prefixed(out, (*prefixes, "-_-_-_-/vllm_submod_0", "-_-_-_-/vllm_submod_2"))
    index = (out / "index.html").read_text()
    wanted = ["vLLM Compilation Summary", "Dynamo Compilation", "Compilation Configuration"]
    wanted += ["Piecewise Split Graph", "range [1, 16384]", "size 8", "submod_0", "submod_2"]
    assert [text for text in wanted if text not in index] == []


@pytest.mark.extended
def test_tlparse_vllm_post_grad_diff(corpus, tmp_path):
    """tlparse's test_parse_vllm_post_grad_diff, on its input (reference §f)."""
    out = _report(tmp_path, corpus / "tlparse-048" / "vllm_post_grad_diff.log")
    folder = "-_0_0_0/vllm_"
    passes = (f"{folder}post_grad.0.FusionPass", f"{folder}post_grad.1.ReshapePass")
    _prefixed(out, (f"{folder}patterns.FusionPass", *passes))
    first = (out / f"{passes[0]}.diff.html").read_text()
    assert all(text in first for text in ("Pass Diff: 0.FusionPass", "diff-add", "diff-del"))
    assert "Pass Diff: 1.ReshapePass" in (out / f"{passes[1]}.diff.html").read_text()


def test_datasette_serves_the_views_and_queries(reports):
    """Through `tldb serve`'s own code path (Datasette's in-process client): every vllm_*
    view and both canned queries answer on the vLLM report's database, the queries with the
    rows SQLite gives, and the mounted report's first page is the summary."""
    import asyncio

    from tldb.serve import make_datasette, plan_serve

    report = reports["compile_calls"]
    datasette = make_datasette(plan_serve([report]))
    conn = _db(report)
    views = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'view' AND name GLOB 'vllm_*'"
        )
    ]
    assert len(views) == 7

    async def check() -> None:
        for view in views:
            page = await datasette.client.get(f"/trace/{view}")
            assert page.status_code == 200, view
        for query in ("vllm_subgraphs_per_range", "vllm_pass_diffs_per_subgraph"):
            answer = await datasette.client.get(f"/trace/{query}.json?_shape=array")
            assert answer.status_code == 200
            expected = [dict(row) for row in conn.execute(_canned(query))]
            assert answer.json() == expected and expected
        first = await datasette.client.get("/report/")
        assert first.status_code == 200 and "<h1>vLLM Compilation Summary</h1>" in first.text

    try:
        asyncio.run(check())
    finally:
        for database in datasette.databases.values():
            database.close()
