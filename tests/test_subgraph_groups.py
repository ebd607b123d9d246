"""Regional-Inductor `subgraph_name` groups in the index (tlparse's later versions, §c).

Entries logged inside a subgraph get a "Subgraph Name: ..." header line before each run of one
name, in log order; files stay flat in the compile id's folder; a log without the key gets no
header (tlparse 0.4.3's index). The hand-written log (tests/data/handwritten/subgraph_groups.log)
has runs that start, change, go back to no subgraph and repeat a name; the real regional
Inductor log has one subgraph. The `artifacts` view carries the name as a column.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import data_path, run_tldb


class _ListItems(HTMLParser):
    """The build-products list of index.html: per compile id, its `<li>` lines as text."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.current: list[str] | None = None
        self.lists: dict[str, list[str]] = {}
        self.text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a" and self.depth == 1 and dict(attrs).get("id"):
            self.current = self.lists.setdefault(dict(attrs)["id"], [])
        if tag == "ul":
            self.depth += 1
        if tag == "li" and self.depth == 2:
            self.text = []

    def handle_endtag(self, tag):
        if tag == "ul":
            self.depth -= 1
        if tag == "li" and self.depth == 2 and self.text is not None:
            assert self.current is not None
            self.current.append(" ".join("".join(self.text).split()))
            self.text = None

    def handle_data(self, data):
        if self.text is not None:
            self.text.append(data)


def build_products(index: Path) -> dict[str, list[str]]:
    page = index.read_text(encoding="utf-8")
    parser = _ListItems()
    parser.feed(page[page.index("Build products below") :])
    return parser.lists


@pytest.fixture(scope="module")
def handwritten(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("subgraphs") / "out"
    result = run_tldb("report", str(data_path("handwritten/subgraph_groups.log")), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_headers_mark_runs_in_log_order(handwritten):
    lists = build_products(handwritten / "index.html")
    first = lists["[0/0]"]
    # The headers, each with the entry that follows it (what the hand-written log logs).
    assert [(line, after) for line, after in itertools.pairwise(first) if "(" not in line] == [
        ("Subgraph Name: region_a", "-_0_0_0/before_pre_grad_graph_1.txt (1)"),
        ("Subgraph Name: region_b<&>", "-_0_0_0/before_pre_grad_graph_3.txt (3)"),
        ("", "-_0_0_0/fx_graph_runnable_5.txt (5)"),
        ("Subgraph Name: region_a", "-_0_0_0/fx_graph_runnable_6.txt (6)"),
    ]
    assert first[0] == "-_0_0_0/dynamo_output_graph_0.txt (0)"  # before any subgraph: none
    assert "region_b_manifest (4)" in first  # links are grouped like files
    assert lists["[1/0]"][0] == "Subgraph Name: region_c"
    assert sum(line.startswith("Subgraph Name") for line in lists["[1/0]"]) == 1


def test_names_are_escaped_and_files_stay_flat(handwritten):
    page = (handwritten / "index.html").read_text(encoding="utf-8")
    assert "Subgraph Name: region_b&lt;&amp;&gt;" in page
    folders = {p.parent.name for p in handwritten.rglob("*_graph_*.txt")}
    assert folders == {"-_0_0_0", "-_1_0_0"}
    assert not any("region" in p.name for p in handwritten.rglob("*"))
    # compile_directory.json keeps tlparse 0.4.3's shape: no group fields.
    directory = json.loads((handwritten / "compile_directory.json").read_text(encoding="utf-8"))
    keys = {frozenset(a) for entry in directory.values() for a in entry["artifacts"]}
    assert keys == {frozenset({"name", "number", "readable_url", "suffix", "url"})}


def test_artifacts_view_has_the_subgraph_name(handwritten):
    conn = sqlite3.connect(handwritten / "trace.db")
    rows = conn.execute("SELECT number, subgraph_name FROM artifacts ORDER BY number").fetchall()
    assert [name for _, name in rows] == [
        None,
        "region_a",
        "region_a",
        "region_b<&>",
        "region_b<&>",
        None,
        "region_a",
        "region_c",
        "region_c",
    ]
    typed = conn.execute(
        "SELECT count(*) FROM artifact_envelopes WHERE subgraph_name = 'region_c'"
    ).fetchone()
    assert typed == (2,)


def test_real_regional_log_groups_its_subgraph(tmp_path):
    """torch 2.13's regional Inductor: one header per run of subgraph entries, as many runs
    as the log's entries (read from the database in number order) make."""
    out = tmp_path / "out"
    result = run_tldb("report", str(data_path("torch213/regional.log")), "-o", str(out))
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(out / "trace.db")
    runs = 0
    previous: dict[str, str] = {}
    for key, name in conn.execute(
        "SELECT compile_id, coalesce(subgraph_name, '') FROM artifacts ORDER BY number"
    ):
        if name != previous.get(key, ""):
            runs += 1
        previous[key] = name
    lists = build_products(out / "index.html")
    headers = [line for lines in lists.values() for line in lines if "(" not in line]
    assert runs >= 1
    assert len(headers) == runs
    assert "Subgraph Name: __marked_inductor_submod0" in headers


def test_log_without_subgraphs_has_no_headers(tmp_path):
    out = tmp_path / "out"
    result = run_tldb("report", str(data_path("torch213/cache_1.log")), "-o", str(out))
    assert result.returncode == 0, result.stderr
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Subgraph Name" not in page
    assert not re.search(r"<li[^>]*>\s*</li>", page)
