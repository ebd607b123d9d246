"""dynamo_guards_N.html pages (modules/guards): parity with tlparse and escaping."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import run_tldb

COMP_METRICS = "tlparse-tests/inputs/comp_metrics.log"
GUARD_PAGES = [
    "-_0_0_1/dynamo_guards_1.html",
    "-_1_0_1/dynamo_guards_4.html",
    "-_2_0_0/dynamo_guards_7.html",
]


def report(log: Path, out: Path) -> None:
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr


def test_guard_pages_match_tlparse(corpus, oracle, parity_tool, tmp_path):
    report(corpus / COMP_METRICS, tmp_path / "out")
    ref = tmp_path / "ref"
    subprocess.run(
        [*oracle, str(corpus / COMP_METRICS), "-o", str(ref), "--no-browser"],
        check=True,
        capture_output=True,
    )
    assert (
        sorted(p.relative_to(ref).as_posix() for p in ref.rglob("dynamo_guards_*")) == GUARD_PAGES
    )
    for rel in GUARD_PAGES:
        want = parity_tool.html_lines(ref / rel)
        # the same lines, after the page title tldb adds
        assert parity_tool.html_lines(tmp_path / "out" / rel) == ["Guards", *want]
        assert len(want) > 2


def test_guard_payloads_are_kept_apart(corpus, tmp_path):
    """tlparse test 3: a guards page is generated, so its payload also goes to payloads/."""
    out = tmp_path / "out"
    report(corpus / COMP_METRICS, out)
    assert sorted(p.name for p in (out / "payloads").iterdir()) == [
        "11726d08889974e57b12edee2812504e.txt",
        "29e35548d59d0e446f0c8a3f3010cc72.txt",
        "e18e1bcb67140c0a67427a6119556f7a.txt",
    ]


def test_guard_code_is_escaped(log_writer, tmp_path):
    guards = '[{"code": "<script>alert(1)</script> & \'x\'"}, {"code": "L[\'y\'] < 3"}]'
    log_writer.add(
        {"dynamo_guards": {}, "frame_id": 0, "frame_compile_id": 0, "attempt": 0}, guards
    )
    out = tmp_path / "out"
    report(log_writer.write(tmp_path / "g.log"), out)
    page = (out / "-_0_0_0/dynamo_guards_0.html").read_text()
    assert "<script>alert" not in page
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39;</code>" in page
    assert "<code>L[&#39;y&#39;] &lt; 3</code>" in page


def test_invalid_guards_make_no_page(log_writer, tmp_path):
    log_writer.add({"dynamo_guards": {}, "frame_id": 0, "frame_compile_id": 0}, "not json")
    log_writer.add({"dynamo_guards": {}, "frame_id": 1, "frame_compile_id": 0}, '[{"c": 1}]')
    out = tmp_path / "out"
    report(log_writer.write(tmp_path / "g.log"), out)
    assert list(out.rglob("dynamo_guards_*")) == []
    assert len(list((out / "payloads").iterdir())) == 2
