"""Created Symbols, Unbacked Symbols and Other Metrics on compilation metrics pages (§d, §e).

Each symbol a real torch 2.13 log creates shows once, on the metrics page of its compile id;
the tables appear only in logs that create symbols (a 0.4.3 page otherwise). Other Metrics
lists exactly the metrics fields tlparse does not model, sorted, escaped, long values folded.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from conftest import data_path, run_tldb
from torch213_log import envelopes

#: The fields tlparse's metrics page models (its CompilationMetricsMetadata).
KNOWN = set(
    """co_name co_filename co_firstlineno cache_size accumulated_cache_size guard_count
    shape_env_guard_count graph_op_count graph_node_count graph_input_count start_time
    entire_frame_compile_time_s backend_compile_time_s inductor_compile_time_s code_gen_time_s
    dynamo_time_before_restart_s fail_type fail_reason fail_user_frame_filename
    fail_user_frame_lineno non_compliant_ops compliant_custom_ops restart_reasons""".split()
)


def report(log: Path, out: Path) -> Path:
    result = run_tldb("report", str(log), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


def metrics_pages(out: Path) -> list[Path]:
    return sorted(out.glob("*/compilation_metrics_*.html"))


def section(page: str, title: str) -> str:
    """The HTML of an h2 section up to the next h2 (or the end)."""
    start = page.index(f"<h2>{title}</h2>")
    end = page.find("<h2>", start + 1)
    return page[start : end if end >= 0 else len(page)]


def first_cells(table_html: str) -> list[str]:
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>", table_html, re.S)
    return [html.unescape(cell) for cell in rows]


def compile_folder(meta: dict) -> str:
    return f"-_{meta['frame_id']}_{meta['frame_compile_id']}_{meta.get('attempt', 0)}"


@pytest.mark.parametrize(
    ("log", "kind", "title"),
    [
        ("cache_1", "create_symbol", "Created Symbols"),
        ("dynamo", "create_unbacked_symbol", "Unbacked Symbols"),
    ],
)
def test_each_symbol_shows_once_on_its_compile_page(tmp_path, log, kind, title):
    out = report(data_path(f"torch213/{log}.log"), tmp_path / "out")
    logged = [(compile_folder(meta), meta[kind]) for k, meta, _ in envelopes(log) if k == kind]
    assert logged
    shown: list[tuple[str, str]] = []
    for page in metrics_pages(out):
        text = page.read_text(encoding="utf-8")
        shown += [(page.parent.name, cell) for cell in first_cells(section(text, title))]
    assert sorted(shown) == sorted((folder, s["symbol"]) for folder, s in logged)
    if kind == "create_symbol":
        folder, symbol = logged[0]
        page = next(p for p in metrics_pages(out) if p.parent.name == folder)
        table = section(page.read_text(encoding="utf-8"), title)
        cells = [html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", table)]
        assert cells[:4] == [symbol[f] for f in ("symbol", "val", "vr", "source")]


def test_no_symbol_tables_without_symbols(tmp_path):
    out = report(data_path("torch213/regional.log"), tmp_path / "out")
    pages = metrics_pages(out)
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "Created Symbols" not in text and "Unbacked Symbols" not in text


def test_other_metrics_are_the_fields_tlparse_does_not_model(tmp_path):
    out = report(data_path("torch213/cache_1.log"), tmp_path / "out")
    logged = [
        meta["compilation_metrics"]
        for k, meta, _ in envelopes("cache_1")
        if k == "compilation_metrics"
    ]
    pages = metrics_pages(out)
    assert len(pages) == len(logged)
    in_order = sorted(pages, key=lambda p: int(p.stem.rpartition("_")[2]))
    for page, metrics in zip(in_order, logged, strict=True):
        table = section(page.read_text(encoding="utf-8"), "Other Metrics")
        assert first_cells(table) == sorted(set(metrics) - KNOWN)


def test_other_metrics_values_escaped_folded_and_absent_when_none(tmp_path, log_writer):
    cid = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
    long_text = "x" * 201
    log_writer.add({"dynamo_start": {"stack": []}, **cid})
    log_writer.add(
        {
            "compilation_metrics": {
                "co_name": "f",
                "zz_markup": "<b>bold</b>",
                "a_null": None,
                "m_dict": {"b": 1, "a": [True, 2.5]},
                "long_one": long_text,
            },
            **cid,
        }
    )
    log_writer.add({"dynamo_start": {"stack": []}, "frame_id": 1, "frame_compile_id": 0})
    log_writer.add({"compilation_metrics": {"co_name": "g"}, "frame_id": 1, "frame_compile_id": 0})
    out = report(log_writer.write(tmp_path / "m.log"), tmp_path / "out")
    page = (out / "-_0_0_0" / "compilation_metrics_0.html").read_text(encoding="utf-8")
    table = section(page, "Other Metrics")
    assert re.findall(r"<tr>\s*<td>(.*?)</td>", table) == [
        "a_null",
        "long_one",
        "m_dict",
        "zz_markup",
    ]
    assert "<td>null</td>" in table
    assert "&lt;b&gt;bold&lt;/b&gt;" in table and "<b>bold" not in table
    assert '<td>{"a":[true,2.5],"b":1}</td>' in html.unescape(table)
    assert f"<details><summary>(click to expand)</summary><pre>{long_text}</pre></details>" in table
    other = (out / "-_1_0_-" / "compilation_metrics_1.html").read_text(encoding="utf-8")
    assert "Other Metrics" not in other


def test_symbols_with_no_attempt_go_to_attempt_zero(tmp_path, log_writer):
    """tlparse files symbols by compile id with a missing attempt read as 0, so a symbol logged
    without one shows on the attempt-0 page, and one of attempt 1 on attempt 1's page."""
    stack = [{"line": 1, "name": "f", "filename": 0, "loc": "x"}]
    log_writer.add({"str": ["/src/model.py", 0]})
    log_writer.add(
        {
            "create_symbol": {
                "symbol": "s0",
                "val": "3",
                "vr": "[2, 8]",
                "source": "L['a']",
                "user_stack": stack,
                "stack": stack,
            },
            "frame_id": 0,
            "frame_compile_id": 0,
        }
    )
    log_writer.add(
        {
            "create_unbacked_symbol": {"symbol": "u0", "vr": "[-int_oo, int_oo]", "stack": stack},
            "frame_id": 0,
            "frame_compile_id": 0,
            "attempt": 1,
        }
    )
    log_writer.add(
        {
            "compilation_metrics": {"co_name": "f"},
            "frame_id": 0,
            "frame_compile_id": 0,
            "attempt": 0,
        }
    )
    log_writer.add(
        {
            "compilation_metrics": {"co_name": "f"},
            "frame_id": 0,
            "frame_compile_id": 0,
            "attempt": 1,
        }
    )
    out = report(log_writer.write(tmp_path / "s.log"), tmp_path / "out")
    first = (out / "-_0_0_0" / "compilation_metrics_0.html").read_text(encoding="utf-8")
    second = (out / "-_0_0_1" / "compilation_metrics_1.html").read_text(encoding="utf-8")
    assert first_cells(section(first, "Created Symbols")) == ["s0"]
    assert "/src/model.py:1 in f" in section(first, "Created Symbols")
    assert first_cells(section(first, "Unbacked Symbols")) == []
    assert first_cells(section(second, "Created Symbols")) == []
    assert first_cells(section(second, "Unbacked Symbols")) == ["u0"]
