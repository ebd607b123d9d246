"""Report parity with tlparse 0.4.3: same files, byte-identical data files, same page text.

Runs the reference and tldb on each case of the corpus's cases.json and compares the trees
with the shared parity tool's own comparison.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import CORPUS

#: Cases whose whole report (HTML pages included) tldb reproduces; each issue adds its cases.
COMPLETE: set[str] = {
    "simple",
    "simple_corrupted_json",
    "artifacts",
    "autotune_with_compile_id",
    "cache_hit_miss",
    "chromium_events",
    "comp_failure",
    "comp_metrics",
    "links",
    "simple-plain-text",
    "simple-custom-header",
    "export",
    "export_guard_added",
    "torch213_mlp",
    "torch213_2ranks_rank0",
    "torch213_2ranks_rank1",
    "provenance_aot_cuda",
    "provenance_aot_debug_handle",
    "provenance_aot",
    "provenance_aot_old",
    "provenance_extended",
    "provenance_jit_cuda",
    "provenance_jit_debug_handle",
    "provenance_jit",
}


def _cases(select) -> list[dict]:
    path = CORPUS / "cases.json"
    if not path.is_file():
        return []
    return [c for c in json.loads(path.read_text()) if select(c)]


def _single_rank(case: dict) -> bool:
    return "--all-ranks-html" not in case["flags"]


def _compare(case, oracle, parity_tool, tmp_path) -> dict:
    source = CORPUS / case["input"]
    ref, got = tmp_path / "tlparse", tmp_path / "tldb"
    common = ["--overwrite", "--no-browser", *case["flags"]]
    subprocess.run([*oracle, str(source), "-o", str(ref), *common], check=True, capture_output=True)
    result = subprocess.run(
        [sys.executable, "-m", "tldb", "report", str(source), "-o", str(got), *common],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return parity_tool.compare(ref, got)


@pytest.mark.parametrize("case", _cases(_single_rank), ids=lambda c: c["name"])
def test_data_files_identical(case, oracle, parity_tool, tmp_path):
    """Every non-HTML file tlparse writes exists and is identical (JSON: equal values)."""
    comparison = _compare(case, oracle, parity_tool, tmp_path)
    assert [m for m in comparison["missing"] if not m.endswith(".html")] == []
    assert comparison["differ"] == []


_BLOCK = re.compile(r"<(p|ol)>(.*?)</\1>", re.DOTALL)
_LINK = re.compile(r"<a\b.*?</a>", re.DOTALL)


def prose_lines(parity_tool, page) -> set[str]:
    """Text lines of tlparse's explanatory paragraphs: <p>/<ol> blocks, their links excluded.

    tldb writes its own explanations (it copies no prose from tlparse), so only these lines
    may be absent from tldb's pages; every heading, list, table, link and data line must be
    there.
    """
    lines: set[str] = set()
    scratch = page.with_name(".prose.html")
    for block in _BLOCK.finditer(page.read_text(errors="replace")):
        scratch.write_text(_LINK.sub("", block.group(0)))
        lines.update(parity_tool.html_lines(scratch))
    scratch.unlink(missing_ok=True)
    return lines


@pytest.mark.parametrize("case", _cases(lambda c: c["name"] in COMPLETE), ids=lambda c: c["name"])
def test_report_matches_tlparse(case, oracle, parity_tool, tmp_path):
    """Every file exists, data files are identical, and pages carry tlparse's text.

    Every text line of every tlparse page is in tldb's page, except lines of tlparse's
    explanatory paragraphs (see prose_lines).
    """
    comparison = _compare(case, oracle, parity_tool, tmp_path)
    assert comparison["missing"] == []
    assert comparison["differ"] == []
    ref, got = tmp_path / "tlparse", tmp_path / "tldb"
    for page in sorted(ref.rglob("*.html")):
        mine = "\n".join(parity_tool.html_lines(got / page.relative_to(ref)))
        absent = [line for line in parity_tool.html_lines(page) if line not in mine]
        allowed = prose_lines(parity_tool, page)
        assert [line for line in absent if line not in allowed] == [], page.relative_to(ref)
