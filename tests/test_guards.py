"""dynamo_guards_N.html pages (modules/guards): parity with tlparse and escaping."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import data_path, run_tldb

COMP_METRICS = "tlparse-tests/inputs/comp_metrics.log"
CORPUS_GUARD_PAGES = [
    "-_0_0_1/dynamo_guards_1.html",
    "-_1_0_1/dynamo_guards_4.html",
    "-_2_0_0/dynamo_guards_7.html",
]


def report(log: Path, out: Path) -> None:
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr


def guard(code: str, **extra) -> dict:
    return {"code": code, **extra}


#: Guards of three compiles as torch writes them: code, with or without stacks (which tlparse
#: ignores); the second compile id is a restarted attempt.
GUARDS = [
    ({"frame_id": 0, "frame_compile_id": 0, "attempt": 0}, [guard("___check_type_id(L['x'], 9)")]),
    (
        {"frame_id": 1, "frame_compile_id": 0, "attempt": 1},
        [
            guard("hasattr(L['x'], '_dynamo_dynamic_indices') == False"),
            guard("L['x'].size()[0] == 4", user_stack=[], stack=[]),
        ],
    ),
    (
        {"frame_id": 2, "frame_compile_id": 0, "attempt": 0},
        [guard("utils_device.CURRENT_DEVICE == None")],
    ),
]


def guards_log(log_writer, path: Path) -> tuple[Path, list[str]]:
    """A log with a graph and a guards list per compile; returns it and the guards payloads."""
    payloads = []
    for cid, guards in GUARDS:
        log_writer.add({"dynamo_output_graph": {}, **cid}, f"graph of {cid['frame_id']}")
        payloads.append(json.dumps(guards))
        log_writer.add({"dynamo_guards": {}, **cid}, payloads[-1])
    return log_writer.write(path), payloads


def guard_pages(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("dynamo_guards_*"))


def assert_guard_pages_match_tlparse(oracle, parity_tool, log: Path, tmp_path: Path) -> list[str]:
    """The same guard pages at the same paths, each with tlparse's lines after tldb's title."""
    report(log, tmp_path / "out")
    ref = tmp_path / "ref"
    subprocess.run(
        [*oracle, str(log), "-o", str(ref), "--no-browser"], check=True, capture_output=True
    )
    pages = guard_pages(ref)
    assert guard_pages(tmp_path / "out") == pages
    for rel in pages:
        want = parity_tool.html_lines(ref / rel)
        # the same lines, after the page title tldb adds
        assert parity_tool.html_lines(tmp_path / "out" / rel) == ["Guards", *want]
        assert len(want) > 1
    return pages


def test_guard_pages_match_tlparse(oracle, parity_tool, log_writer, tmp_path):
    log, _ = guards_log(log_writer, tmp_path / "g.log")
    pages = assert_guard_pages_match_tlparse(oracle, parity_tool, log, tmp_path)
    assert [p.split("/")[0] for p in pages] == ["-_0_0_0", "-_1_0_1", "-_2_0_0"]


def test_guard_pages_of_a_real_log_match_tlparse(oracle, parity_tool, tmp_path):
    """torch 2.13 dumps a guards list when AOTAutograd guards overlapping inputs (shapes.log)."""
    log = data_path("torch213/shapes.log")
    assert assert_guard_pages_match_tlparse(oracle, parity_tool, log, tmp_path)


def test_guard_payloads_are_kept_apart(log_writer, tmp_path):
    """tlparse test 3: a guards page is generated, so its payload also goes to payloads/,
    named by its declared md5 (the graphs are files of their own and do not)."""
    log, payloads = guards_log(log_writer, tmp_path / "g.log")
    out = tmp_path / "out"
    report(log, out)
    assert sorted(p.name for p in (out / "payloads").iterdir()) == sorted(
        f"{hashlib.md5(p.encode()).hexdigest()}.txt" for p in payloads
    )


@pytest.mark.extended
def test_corpus_guard_pages_match_tlparse(corpus, oracle, parity_tool, tmp_path):
    """tlparse's conformance input: guards of an older torch."""
    pages = assert_guard_pages_match_tlparse(oracle, parity_tool, corpus / COMP_METRICS, tmp_path)
    assert pages == CORPUS_GUARD_PAGES


@pytest.mark.extended
def test_corpus_guard_payloads_are_kept_apart(corpus, tmp_path):
    """tlparse test 3, on its own input and with its literal hashes."""
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
