"""Run history: `tldb history add|show`, its page (also in headless Chromium) and Datasette.

The history holds seven real torch 2.13 runs (the diff pairs of tests/data/torch213/pairs),
added in an order where graph breaks rise once (the run without the break, then the run with
it). Expected values are read from the logs with plain json (tests/pair_logs.py).
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from click.testing import CliRunner
from conftest import data_path
from pair_logs import artifacts, build_databases, cache_outcomes, compile_seconds
from test_browser import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401 (a fixture)

from tldb.cli import cli
from tldb.resources import metadata_file
from tldb.serve import HISTORY_DATABASE, make_datasette, plan_serve

#: The runs, in the order they are added.
ORDER = [
    "graph_break_after",
    "graph_break_before",
    "recompile_before",
    "recompile_after",
    "guard_before",
    "cache_cold",
    "cache_warm",
]
CHARTS = ("compile_seconds", "graph_breaks", "recompiles", "cache_hit_rate")


def tldb(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def recompiles(log: str) -> int:
    """Recompile reasons a log lists (a recompile_reasons artifact is one reason as text, or a
    JSON list of them)."""
    import json

    total = 0
    for payload in artifacts(log, "recompile_reasons"):
        try:
            reasons = json.loads(payload)
        except ValueError:
            reasons = [payload]
        total += len(reasons) if isinstance(reasons, list) else 1
    return total


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("history")
    dbs = build_databases(folder)
    target = folder / "history.db"
    for name in ORDER:
        result = tldb("history", "add", dbs[name], "--db", target, "--label", name)
        assert result.exit_code == 0, result.output
        assert "added" in result.output
    return target, dbs


def rows(path: Path, sql: str) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_runs_hold_what_the_logs_say(history):
    target, _ = history
    stored = rows(
        target,
        "SELECT label, graph_breaks, recompiles, cache_hits, cache_misses, compile_seconds, "
        "torch_version FROM runs ORDER BY id",
    )
    assert [row[0] for row in stored] == ORDER
    for label, breaks, recompiled, hits, misses, seconds, version in stored:
        assert breaks == len(artifacts(label, "dynamo_graph_break_reason")), label
        assert recompiled == recompiles(label), label
        caches = cache_outcomes(label).values()
        assert (hits, misses) == (sum(c["hit"] for c in caches), sum(c["miss"] for c in caches))
        assert seconds == pytest.approx(compile_seconds(label))
        assert version.startswith("2.13.")
    phases = rows(target, "SELECT count(DISTINCT run_id) FROM run_phases WHERE phase = 'total'")
    assert phases == [(len(ORDER),)]


def test_adding_the_same_run_again_changes_nothing(history, tmp_path):
    target, dbs = history
    copy = tmp_path / "history.db"
    shutil.copyfile(target, copy)
    before = rows(copy, "SELECT * FROM runs ORDER BY id")
    again = tldb("history", "add", dbs["guard_before"], "--db", copy, "--label", "other name")
    assert again.exit_code == 0 and "already in the history" in again.output
    as_log = data_path("torch213/pairs/guard_before.log")  # the same run, given as its log
    assert "already in the history" in tldb("history", "add", as_log, "--db", copy).output
    assert rows(copy, "SELECT * FROM runs ORDER BY id") == before


def test_a_trace_database_is_not_a_history(history):
    _, dbs = history
    result = tldb("history", "add", dbs["guard_before"], "--db", dbs["guard_after"])
    assert result.exit_code == 1 and "is not a tldb history database" in result.output
    missing = tldb("history", "show", "--db", dbs["guard_after"].with_name("none.db"))
    assert missing.exit_code == 1 and "does not exist" in missing.output


class _Page(HTMLParser):
    """Circles per chart, links, sources and ids of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.points: dict[str, int] = {}
        self.lines: set[str] = set()
        self.links: list[str] = []
        self.sources: list[str] = []
        self.ids: set[str] = set()
        self._chart: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "svg":
            self._chart = attrs.get("data-column")
            self.points[self._chart] = 0
        elif tag == "circle" and self._chart:
            self.points[self._chart] += 1
        elif tag == "polyline" and self._chart:
            self.lines.add(self._chart)
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if "src" in attrs:
            self.sources.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = None


def expected_points() -> dict[str, int]:
    """A point per run, except the hit rate: only runs that looked something up in a cache."""
    with_lookups = sum(1 for name in ORDER if cache_outcomes(name))
    return {**{c: len(ORDER) for c in CHARTS}, "cache_hit_rate": with_lookups}


@pytest.fixture(scope="module")
def page(history, tmp_path_factory) -> Path:
    target, _ = history
    out = tmp_path_factory.mktemp("page") / "site"
    result = tldb("history", "show", "--db", target, "-o", out)
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[0].split()[:2] == ["id", "label"]
    assert [line.split()[1] for line in table[1:]] == ORDER
    return out / "index.html"


def test_page_has_a_chart_per_trend_with_a_point_per_run(page):
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    assert parsed.points == expected_points()
    assert expected_points()["cache_hit_rate"] == 2  # the cold and the warm run
    assert parsed.lines == set(CHARTS)
    # offline: nothing to fetch, and every link is an anchor of the page itself
    assert parsed.sources == []
    assert not re.search(
        r"https?://", page.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
    )
    assert len(parsed.links) == len(CHARTS) + 1  # to each chart and to the table
    assert all(link.startswith("#") and link[1:] in parsed.ids for link in parsed.links)


# ---------------------------------------------------------------------------------- Datasette


@pytest_asyncio.fixture
async def ds(history):
    target, _ = history
    datasette = make_datasette(plan_serve([target]))
    yield datasette
    for database in datasette.databases.values():
        database.close()


async def _rows(ds, path: str) -> list[dict]:
    response = await ds.client.get(path)
    assert response.status_code == 200, (path, response.text[:300])
    return response.json()


@pytest.mark.asyncio
async def test_datasette_serves_the_history_with_its_canned_queries(ds, history):
    target, _ = history
    name = target.stem
    slowest = await _rows(ds, f"/{name}/slowest_runs.json?_shape=array")
    assert slowest[0]["label"] == max(ORDER, key=compile_seconds)
    rose = await _rows(ds, f"/{name}/graph_breaks_rose.json?_shape=array")
    breaks = [len(artifacts(n, "dynamo_graph_break_reason")) for n in ORDER]
    expected = [n for i, n in enumerate(ORDER) if i and breaks[i] > breaks[i - 1]]
    assert [row["label"] for row in rose] == expected == ["graph_break_before"]
    page = await ds.client.get(f"/{name}")
    assert page.status_code == 200 and "A history of torch.compile runs" in page.text


def test_every_history_column_is_described(history):
    target, _ = history
    with metadata_file().open(encoding="utf-8") as f:
        tables = yaml.safe_load(f)["databases"][HISTORY_DATABASE]["tables"]
    names = [
        r[0] for r in rows(target, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    ]
    assert sorted(names) == sorted(tables)
    for table in names:
        columns = [r[1] for r in rows(target, f"PRAGMA table_info([{table}])")]
        assert sorted(columns) == sorted(tables[table]["columns"]), table


# ----------------------------------------------------------------------------- headless Chromium

# The Chromium that tests/test_browser.py drives (its `browser` fixture), skipped the same way.
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Chromium and its driver are not installed "
    "(apt-get install chromium chromium-driver; .ci/run does this)",
)


@needs_chromium
def test_page_looks_right_in_chromium(page, browser):  # noqa: F811 (the fixture)
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    assert browser.title == "tldb run history"
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    shown = {c.get_attribute("data-column"): c for c in charts}
    assert set(shown) == set(CHARTS)
    for column, count in expected_points().items():
        chart = shown[column]
        assert chart.is_displayed()
        assert chart.size["width"] > 300 and chart.size["height"] > 100  # laid out, not 0x0
        points = chart.find_elements(By.CSS_SELECTOR, "circle.point")
        assert len(points) == count, column
        assert all(p.is_displayed() for p in points)
        # points run left to right, inside the chart
        xs = [float(p.get_attribute("cx")) for p in points]
        assert xs == sorted(xs) and len(set(xs)) == len(xs)
    rows = browser.find_elements(By.CSS_SELECTOR, "table#runs tr[id^=run-]")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ORDER
    # no broken link or resource: every href resolves to an element of the page, every
    # image/script source (none expected) loaded
    for link in browser.find_elements(By.CSS_SELECTOR, "a[href]"):
        target = link.get_attribute("href").split("#", 1)
        assert target[0] == page.as_uri() and browser.find_elements(By.ID, target[1])
    broken = browser.execute_script(
        "return [...document.querySelectorAll('img,script[src],link[href]')]"
        ".filter(e => (e.tagName === 'IMG' && !e.complete) || e.src || e.href).length"
    )
    assert broken == 0
