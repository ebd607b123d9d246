"""Report parity with tlparse 0.4.3: the same files, identical data files, the same pages.

Every case runs tlparse and `tldb report` once (cached for the session) and compares the two
trees with the repository's harness (tests/tlparse_parity.py):
- files: every file tlparse writes exists in tldb's tree; data files are identical (JSON files
  equal as values, listing-ordered multi-rank files equal up to order);
- pages: tlparse's visible text, its explanatory prose dropped by position, appears in tldb's
  page in the same order; the links are the same (tldb may add links to its own extra files);
  code pages hold the same code lines exactly.

The in-repo cases (tests/data/cases.json) always run. The corpus's cases (../shared/corpus)
are the extended suite: data files for every single-rank case, whole reports for COMPLETE.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import tlparse_parity
from conftest import CORPUS, data_cases, data_path
from tlparse_parity import ALLOWED, TreeComparison

#: Corpus cases whose whole report (HTML pages included) tldb reproduces. The multi-rank corpus
#: cases are compared the same way by tests/test_multi_rank.py (MULTI_RANK_CASES).
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


def corpus_cases() -> list[dict]:
    path = CORPUS / "cases.json"
    return json.loads(path.read_text()) if path.is_file() else []


@dataclass
class Run:
    """tlparse's and tldb's reports of one case."""

    case: dict
    ref: Path
    got: Path
    #: The flags tlparse ran with (they decide which template wrote a page).
    ref_flags: list[str]
    tldb_exit: int
    tldb_stderr: str
    comparison: TreeComparison


def in_mtime_order(folder: Path, names: list[str], root: Path) -> Path:
    """A copy of `folder` whose files `names` (oldest first) have increasing modification
    times: --latest picks the newest file, and a clone of the repository keeps no times."""
    copy = root / "input"
    shutil.copytree(folder, copy)
    for age, name in enumerate(names):
        os.utime(copy / name, (1_700_000_000 + 10 * age, 1_700_000_000 + 10 * age))
    return copy


def _run(case: dict, source, oracle: list[str], root: Path) -> Run:
    reference = case.get("reference", {})
    ref_source = source(reference["input"]) if "input" in reference else source(case["input"])
    ref_flags = list(reference.get("flags", case["flags"]))
    ref, got = root / "tlparse", root / "tldb"
    theirs = tlparse_parity.run_reference(oracle, ref_source, ref, *ref_flags)
    assert theirs.returncode == 0, f"tlparse failed on {case['name']}: {theirs.stderr}"
    assert any(ref.iterdir()), f"tlparse wrote nothing for {case['name']}"
    ours_source = source(case["input"])
    if "mtime_order" in case:
        ours_source = in_mtime_order(ours_source, case["mtime_order"], root)
    ours = tlparse_parity.run_tldb_report(ours_source, got, *case["flags"])
    comparison = tlparse_parity.compare_trees(ref, got)
    return Run(case, ref, got, ref_flags, ours.returncode, ours.stderr, comparison)


@pytest.fixture(scope="session")
def reports(oracle, tmp_path_factory):
    """Both reports of a case, made once per session: `reports(case, corpus=False)`."""
    done: dict[tuple[bool, str], Run] = {}

    def get(case: dict, corpus: bool = False) -> Run:
        key = (corpus, case["name"])
        if key not in done:
            root = tmp_path_factory.mktemp(("corpus-" if corpus else "") + case["name"])
            source = (lambda rel: CORPUS / rel) if corpus else data_path
            done[key] = _run(case, source, oracle, root)
        return done[key]

    return get


def page_differences(run: Run, allowed=ALLOWED) -> dict[str, str]:
    """Each page of tlparse's report that tldb's does not match, with how it differs."""
    found = {}
    for rel in run.comparison.pages:
        kind = tlparse_parity.page_kind(rel, run.ref_flags)
        result = tlparse_parity.compare_page(
            run.ref / rel, run.got / rel, rel, kind, run.comparison.extra, allowed
        )
        if result:
            found[rel] = f"{rel} ({kind}):\n{result.describe()}"
    return found


def assert_report_matches(run: Run) -> None:
    """Every file is there, data files are identical and every page matches tlparse's."""
    assert run.comparison.missing == []
    assert run.comparison.differ == []
    differences = page_differences(run)
    assert not differences, "pages differ from tlparse's:\n" + "\n".join(differences.values())


# --- in-repo cases -------------------------------------------------------------------------------


def _ids(case: dict) -> str:
    return case["name"]


@pytest.mark.parametrize("case", data_cases(), ids=_ids)
def test_report_matches_tlparse(case, reports):
    """tldb exits as the case says, and its report equals tlparse's (files, data, pages)."""
    run = reports(case)
    assert run.tldb_exit == case.get("exit", 0), run.tldb_stderr
    assert_report_matches(run)


def test_in_repo_cases_are_sound():
    """Names are unique, inputs exist, and the report modes are all there."""
    cases = data_cases()
    names = [case["name"] for case in cases]
    assert len(set(names)) == len(names)
    for case in cases:
        assert data_path(case["input"]).exists(), case["name"]
    flags = {flag for case in cases for flag in case["flags"]}
    assert {"--export", "--all-ranks-html", "--plain-text", "--inductor-provenance"} <= flags


#: Kinds of tlparse pages the in-repo cases must show, so that each way of comparing pages
#: (prose positions, unordered lists, code blocks, provenance panes) compares something.
#: Not listed: symbolic_guard (tlparse cannot read torch 2.13's export entries) and
#: aot_metrics (no in-repo log has an aot_autograd_backward_compilation_metrics entry).
PAGE_KINDS = {
    "index",
    "export_index",
    "multi_rank_index",
    "compilation_metrics",
    "bwd_compilation_metrics",
    "failures_and_restarts",
    "dynamo_guards",
    "output_code",
    "dump_file",
    "readable_traces",
    "provenance",
}


def test_in_repo_cases_show_every_page_kind(reports):
    shown = set()
    for case in data_cases():
        run = reports(case)
        shown |= {tlparse_parity.page_kind(rel, run.ref_flags) for rel in run.comparison.pages}
    assert PAGE_KINDS - shown == set()


def test_output_code_pages_equal_tlparse_line_for_line(reports):
    """Output code pages carry exactly tlparse's code, no line more or less (tldb once ended
    each with an extra empty line), and the in-repo cases do have such pages."""
    pages, differ = 0, []
    for case in data_cases():
        run = reports(case)
        for rel in run.comparison.pages:
            if tlparse_parity.page_kind(rel, run.ref_flags) != "output_code":
                continue
            pages += 1
            got = run.got / rel
            if tlparse_parity.compare_page(run.ref / rel, got, rel, "output_code", allowed=()):
                differ.append(f"{case['name']}/{rel}")
    assert pages > 0, "no in-repo case has inductor output code pages"
    assert differ == []


# --- extended suite: the corpus's cases ----------------------------------------------------------


@pytest.mark.extended
def test_complete_names_are_corpus_cases():
    """A name of COMPLETE that is not (or no longer) a corpus case would test nothing."""
    assert COMPLETE - {case["name"] for case in corpus_cases()} == set()


@pytest.mark.extended
@pytest.mark.parametrize(
    "case", [c for c in corpus_cases() if "--all-ranks-html" not in c["flags"]], ids=_ids
)
def test_corpus_data_files_identical(case, reports):
    """Every non-HTML file tlparse writes exists and is identical (JSON: equal values)."""
    run = reports(case, corpus=True)
    assert run.tldb_exit == 0, run.tldb_stderr
    assert [m for m in run.comparison.missing if not m.endswith(".html")] == []
    assert run.comparison.differ == []


@pytest.mark.extended
@pytest.mark.parametrize("case", [c for c in corpus_cases() if c["name"] in COMPLETE], ids=_ids)
def test_corpus_report_matches_tlparse(case, reports):
    """The whole report of a COMPLETE case equals tlparse's (files, data, pages)."""
    run = reports(case, corpus=True)
    assert run.tldb_exit == 0, run.tldb_stderr
    assert_report_matches(run)


# --- the comparison itself, on pages written by hand ----------------------------------------------

INDEX = """<html><body><h2>Stack trie</h2>
<p>{intro}</p>
<p>{legend}
<span class="status-ok">[Success]</span></p>
<h2> Failures and Restarts </h2>
<p>{why}
This run had <strong><a href="failures_and_restarts.html">{count} restart(s)</a></strong>.</p>
<ul><li><a href="{folder}/a_0.txt">{folder}/a_0.txt</a> (0)</li>
<li><a href="{folder}/b_1.txt">{folder}/b_1.txt</a> (1)</li></ul>
{more}</body></html>"""
THEIRS = {
    "intro": "The stack trie is a way of getting a quick orientation.",
    "legend": "Links are color coded by status:",
    "why": "Various issues may cause Dynamo to restart.",
    "count": "2",
    "folder": "-_0_0_0",
    "more": "",
}


def _index_difference(tmp_path: Path, extra: tuple[str, ...] = (), **ours: str):
    """compare_page of a hand-written tlparse index and the same page with `ours` changed."""
    ref, got = tmp_path / "ref.html", tmp_path / "got.html"
    ref.write_text(INDEX.format(**THEIRS))
    got.write_text(INDEX.format(**{**THEIRS, **ours}))
    return tlparse_parity.compare_page(ref, got, "index.html", "index", extra)


def test_prose_is_dropped_by_position_and_data_is_compared(tmp_path):
    reworded = {"intro": "tldb's words.", "legend": "Colours:", "why": "Dynamo restarts."}
    assert not _index_difference(tmp_path, **reworded)
    # The same words in a place that is not prose must still be there.
    assert _index_difference(tmp_path, count="20").text == ["2 restart(s)"]
    assert _index_difference(tmp_path, count="20", **reworded).text == ["2 restart(s)"]


def test_lines_must_keep_their_order(tmp_path):
    page = INDEX.format(**THEIRS)
    swapped = page.replace("(0)</li>", "(9)</li>").replace("(1)</li>", "(0)</li>")
    (tmp_path / "ref.html").write_text(page)
    (tmp_path / "got.html").write_text(swapped.replace("(9)</li>", "(1)</li>"))
    result = tlparse_parity.compare_page(
        tmp_path / "ref.html", tmp_path / "got.html", "index.html", "index"
    )
    assert result.text and not result.links_missing


def test_links_must_be_the_same_except_to_tldb_extra_files(tmp_path):
    moved = _index_difference(tmp_path, folder="broken/-_0_0_0")
    assert moved.links_missing == ["-_0_0_0/a_0.txt", "-_0_0_0/b_1.txt"]
    assert moved.links_added == ["broken/-_0_0_0/a_0.txt", "broken/-_0_0_0/b_1.txt"]
    extra_page = '<a href="triage.html">Triage</a>'
    assert _index_difference(tmp_path, more=extra_page).links_added == ["triage.html"]
    assert not _index_difference(tmp_path, extra=("triage.html",), more=extra_page)


def test_code_pages_compare_code_exactly(tmp_path):
    ref, got = tmp_path / "ref.html", tmp_path / "got.html"
    ref.write_text('<pre>\n<span style="x">def f</span><span>(x):\n</span>    return  x\n</pre>')
    got.write_text("<pre>\ndef f(x):\n    return  x\n</pre><script>var a = 1;</script>")
    rel = "-_0_0_0/inductor_output_code_abc_3.html"
    assert not tlparse_parity.compare_page(ref, got, rel, "output_code")
    got.write_text("<pre>\ndef f(x):\n    return x\n</pre>")  # one space less
    assert tlparse_parity.compare_page(ref, got, rel, "output_code").code == [
        ("block 0 line 2:     return  x", "    return x")
    ]
