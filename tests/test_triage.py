"""The triage page on real torch 2.13 traces; expected counts come from the log lines."""

from __future__ import annotations

import html
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from conftest import data_path
from torch213_log import envelopes, label

from tldb.report import ReportRequest, run_report

MODULES = ["triage", "envelope_kinds"]


def report_log(log: Path, out: Path) -> str:
    run_report(ReportRequest(source=log, out_dir=out, overwrite=True, modules=MODULES))
    return (out / "triage.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """(triage.html, index.html) of each trace."""
    result = {}
    for name in ("dynamo", "cache_1", "cache_2"):
        out = tmp_path_factory.mktemp(name) / "out"
        page = report_log(data_path(f"torch213/{name}.log"), out)
        result[name] = (page, (out / "index.html").read_text(encoding="utf-8"))
    return result


def data_counts(page: str, cls: str) -> list[int]:
    return [int(n) for n in re.findall(rf'<tr class="{cls}" data-count="(\d+)"', page)]


def section(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    end = page.find("<h2 ", start + 1)
    return page[start : end if end > 0 else len(page)]


def test_graph_breaks_are_deduplicated_with_counts(pages):
    breaks = Counter()
    for kind, meta, payload in envelopes("dynamo"):
        if kind == "artifact" and meta["artifact"]["name"] == "dynamo_graph_break_reason":
            breaks[payload.splitlines()[0]] += 1
    assert breaks, "the dynamo trace has a graph break"
    page = pages["dynamo"][0]
    assert sorted(data_counts(page, "graph-break")) == sorted(breaks.values())
    for first_line in breaks:
        location = first_line.removeprefix("Graph break in user code at ")
        assert html.escape(location, quote=False) in section(page, "graph-breaks")
    assert "torch._dynamo.graph_break()" in html.unescape(section(page, "graph-breaks"))


def test_recompiles_per_frame_with_reasons(pages):
    for name in ("dynamo", "cache_1"):
        compiles = defaultdict(set)
        reasons = []
        for kind, meta, payload in envelopes(name):
            if kind == "compilation_metrics":
                compiles[meta["frame_id"]].add(meta["frame_compile_id"])
            if kind == "artifact" and meta["artifact"]["name"] == "recompile_reasons":
                reasons.append(payload.strip().strip('"[]').split("\n")[0].strip().strip('"'))
        expected = sorted(len(c) for c in compiles.values() if len(c) > 1)
        page = pages[name][0]
        assert expected, name
        assert sorted(data_counts(page, "recompile")) == expected
        text = html.unescape(section(page, "recompiles"))
        for reason in reasons:
            assert reason in text
    # automatic dynamic: the recompile made the size symbolic
    assert "(dynamic: s" in section(pages["cache_1"][0], "recompiles")


def test_failures_listed(pages):
    failures = [
        (label(meta), meta["compilation_metrics"]["fail_type"])
        for kind, meta, _ in envelopes("dynamo")
        if kind == "compilation_metrics" and meta["compilation_metrics"]["fail_type"]
    ]
    assert failures
    part = section(pages["dynamo"][0], "failures")
    assert part.count('<tr class="failure">') == len(failures)
    for compile_id, fail_type in failures:
        assert compile_id in part and fail_type in part
    assert section(pages["cache_1"][0], "failures").count('<tr class="failure">') == 0


def test_slowest_compile_first_with_phases(pages):
    durations = [
        (meta[kind]["duration_us"], label(meta))
        for kind, meta, _ in envelopes("dynamo")
        if kind in ("compilation_metrics", "bwd_compilation_metrics")
    ]
    slowest = max(durations)[1]
    part = section(pages["dynamo"][0], "slowest")
    first_row = part.split('<tr class="slow">')[1]
    assert f"<td>{slowest}" in first_row
    assert "entire_frame_compile" in first_row  # a chromium phase
    assert "Dynamo (whole frame)" in first_row  # a metrics time field


@pytest.mark.parametrize(("name", "outcome"), [("cache_1", "miss"), ("cache_2", "hit")])
def test_cache_outcomes(pages, name, outcome):
    counts = Counter()
    for kind, meta, _ in envelopes(name):
        if kind == "artifact":
            found = re.match(
                r"^(fx_graph|aotautograd)_cache_(hit|miss|bypass)$", meta["artifact"]["name"]
            )
            if found:
                counts[(found.group(1), found.group(2))] += 1
    page = pages[name][0]
    rows = re.findall(
        r'data-cache="([^"]+)" data-hit="(\d+)" data-miss="(\d+)" data-bypass="(\d+)"', page
    )
    got = {
        ("fx_graph" if cache.startswith("FX") else "aotautograd", o): int(n)
        for cache, *ns in rows
        for o, n in zip(("hit", "miss", "bypass"), ns, strict=True)
        if int(n)
    }
    assert got == dict(counts)
    assert all(o == outcome for _, o in got)


def test_index_links_to_triage_and_says_what_it_found(pages):
    page, index = pages["dynamo"]
    assert '<a href="triage.html">' in index
    summary = index[index.index('id="triage"') :]
    assert "1 distinct graph break(s)" in summary
    assert "1 failed compile(s)" in summary
    for heading in ("graph-breaks", "recompiles", "failures", "slowest", "cache"):
        assert 'class="explain"' in section(page, heading)


def test_restart_reasons_when_no_graph_break_artifact(tmp_path, log_writer):
    """Logs from before dynamo_graph_break_reason: the restarts of compilation_metrics."""
    meta = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
    log_writer.add({"dynamo_start": {"stack": []}, **meta})
    reasons = ["Unsupported: call to print", "Unsupported: call to print"]
    log_writer.add({"compilation_metrics": {"co_name": "f", "restart_reasons": reasons}, **meta})
    log_writer.add(
        {"compilation_metrics": {"co_name": "g", "restart_reasons": reasons[:1]}, **meta}
    )
    page = report_log(log_writer.write(tmp_path / "old.log"), tmp_path / "out")
    assert data_counts(page, "graph-break") == [3]
    assert "Unsupported: call to print" in page


def test_no_page_without_compiles(tmp_path, log_writer):
    log_writer.add({"str": ["/x.py", 0]})
    log = log_writer.write(tmp_path / "empty.log")
    out = tmp_path / "out"
    run_report(ReportRequest(source=log, out_dir=out, overwrite=True, modules=MODULES))
    assert not (out / "triage.html").exists()
    assert "triage.html" not in (out / "index.html").read_text(encoding="utf-8")
