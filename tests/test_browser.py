"""A real browser on a real `tldb serve`: the report links into Datasette, a canned query shows.

Runs `tldb serve` as a subprocess on a report folder (any free port on 127.0.0.1) and drives
Debian's headless Chromium with Selenium and chromium-driver (no browser download). Skipped,
with the reason, where Chromium or its driver is missing; CI installs both (.ci/run).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin

import chromium
import pytest
from conftest import data_path
from tlparse_parity import page_links
from torch213_log import envelopes

from tldb.report import ReportRequest, run_report

pytestmark = chromium.needs_chromium


LOG = "torch213/dynamo.log"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """dynamo.log: a graph break, a recompile, a failed compile (see generate_traces.py)."""
    out = tmp_path_factory.mktemp("browser") / "out"
    run_report(ReportRequest(source=data_path(LOG), out_dir=out))
    return out


@pytest.fixture(scope="module")
def server(report):
    """`tldb serve` on a free port; yields its base URL; stops it with Ctrl-C (SIGINT)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tldb", "serve", str(report), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline()))
    reader.start()
    reader.join(timeout=60)
    if not first or "http://" not in first[0]:
        process.kill()
        pytest.fail(f"tldb serve did not start: {first} {process.stderr.read()}")
    base = first[0].split()[3].rstrip("/")  # "tldb serve: Datasette http://127.0.0.1:N/ ..."
    yield base
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Stopped." in out


@pytest.fixture(scope="module")
def browser():
    yield from chromium.driver()


def _wait(driver, condition, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_report_index_links_into_datasette(server, browser, report):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/report/")
    section = browser.find_element(By.ID, "tldb-datasette")
    _wait(browser, lambda d: section.is_displayed())
    links = {a.text: a.get_attribute("href") for a in section.find_elements(By.TAG_NAME, "a")}
    assert links["Tables and views of trace"] == f"{server}/trace"
    assert links["Ad-hoc SQL on trace"].startswith(f"{server}/trace?sql=select+")
    assert links["Distinct graph breaks"] == f"{server}/trace/distinct_graph_breaks"
    # The rest of the page is the report itself, served from the same origin: every link of
    # the file, in order, resolved against /report/.
    ours = set(links.values())
    served = [a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")]
    served = [href for href in served if href is not None]  # <a id=...> anchors
    expected = [urljoin(f"{server}/report/", href) for href in page_links(report / "index.html")]
    assert [href for href in served if href not in ours] == expected
    assert len(expected) > 20


def test_report_pages_open_from_the_served_index(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/report/")
    metrics = browser.find_element(By.CSS_SELECTOR, 'a[href$="compilation_metrics_8.html"]')
    metrics.click()
    _wait(browser, lambda d: d.find_elements(By.TAG_NAME, "h1"))
    assert browser.current_url == f"{server}/report/-_0_0_1/compilation_metrics_8.html"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Compilation Info for [0/0_1]"


def _graph_break_location() -> str:
    """Where dynamo.log's one graph break happened, read from its artifact with plain json."""
    (payload,) = [
        payload
        for kind, meta, payload in envelopes("dynamo")
        if kind == "artifact" and meta["artifact"]["name"] == "dynamo_graph_break_reason"
    ]
    head = payload.split("\n", 1)[0]
    assert head.startswith("Graph break in user code at ")
    return head.removeprefix("Graph break in user code at ")


def test_canned_query_page_shows_rows(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/report/")
    section = browser.find_element(By.ID, "tldb-datasette")
    _wait(browser, lambda d: section.is_displayed())
    section.find_element(By.LINK_TEXT, "Distinct graph breaks").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Distinct graph breaks"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")
    assert len(rows) == 1  # one torch._dynamo.graph_break() call, reached once

    def cell(column: str) -> str:
        return rows[0].find_element(By.CSS_SELECTOR, f"td.col-{column}").text

    assert "Call to `torch._dynamo.graph_break()`" in cell("reason")
    assert (cell("occurrences"), cell("locations"), cell("compiles")) == ("1", "1", "1")
    assert cell("first_location") == _graph_break_location()
    assert cell("first_compile_id") == "[0/0]"


#: dynamo.log's compile ids and their status, by hand from its envelopes: [0/0] restarted at
#: the graph break (its metrics are [0/0_1]'s, which lists the restart reason); chromium events
#: without a compile id make [-/-]; [1/0] to [4/0] compiled; [5/0] failed (fullgraph=True).
STATUSES = {
    "[0/0]": "missing",
    "[-/-]": "missing",
    "[0/0_1]": "break",
    "[1/0]": "ok",
    "[2/0]": "ok",
    "[2/1]": "ok",
    "[3/0]": "ok",
    "[4/0]": "ok",
    "[5/0]": "error",
}


def test_ad_hoc_sql_page_runs_a_select(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/trace?sql=select+compile_id,+status+from+compiles")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")
    shown = {
        row.find_element(By.CSS_SELECTOR, "td.col-compile_id").text: row.find_element(
            By.CSS_SELECTOR, "td.col-status"
        ).text
        for row in rows
    }
    assert shown == STATUSES


def test_section_stays_hidden_as_a_plain_file(report, browser):
    from selenium.webdriver.common.by import By

    browser.get((report / "index.html").as_uri())
    section = browser.find_element(By.ID, "tldb-datasette")
    assert not section.is_displayed()
    assert section.find_elements(By.TAG_NAME, "a") == []
