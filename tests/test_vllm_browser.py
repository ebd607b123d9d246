"""The vLLM report in a real browser: the report folder of a vLLM log (compile_calls.log: two
compile calls, pass diffs) is served as a plain static site (Python's http.server on
127.0.0.1, any free port), headless Chromium opens its root, which is the vLLM summary, and
every link on it resolves to a file of the report (besides Perfetto's site). Skipped, with
the reason, where Chromium or its driver is missing (CI installs both, see .ci/run)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import chromium
import pytest
from conftest import DATA

from tldb.report import ReportRequest, run_report

pytestmark = chromium.needs_chromium

#: The one link of the summary that leaves the report.
EXTERNAL = {"https://ui.perfetto.dev/"}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vllm-browser") / "out"
    run_report(ReportRequest(source=DATA / "vllm" / "compile_calls.log", out_dir=out))
    return out.resolve()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def site(report):
    """The report folder on a static web server; yields its root URL."""
    handler = functools.partial(_QuietHandler, directory=str(report))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    yield from chromium.driver()


def _links(browser) -> list:
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.TAG_NAME, "a")


def test_summary_is_the_first_page_and_every_link_resolves(report, site, browser):
    from selenium.webdriver.common.by import By

    browser.get(site)  # the folder's root: what a web server shows first
    assert browser.title == "vLLM Compilation Summary"
    assert browser.find_element(By.TAG_NAME, "h1").text == "vLLM Compilation Summary"
    hrefs = [a.get_attribute("href") for a in _links(browser)]
    assert len(hrefs) > 20
    outside = set()
    for href in hrefs:
        if not href.startswith(site):
            outside.add(href)
            continue
        target = (report / unquote(urlparse(href).path).lstrip("/")).resolve()
        assert target.is_relative_to(report), href
        assert target.is_file(), href
    assert outside == EXTERNAL


def test_summary_links_open_their_pages(site, browser):
    from selenium.webdriver.common.by import By

    browser.get(site)
    # The first call is open, its pass graphs are in a closed block: expand it, open a diff.
    call = browser.find_elements(By.CSS_SELECTOR, "details.call")[0]
    closed = [d for d in call.find_elements(By.TAG_NAME, "details") if not d.get_attribute("open")]
    diff = closed[0].find_element(By.CSS_SELECTOR, 'a[href$="1.NoOpEliminationPass.diff.html"]')
    assert not diff.is_displayed()
    closed[0].find_element(By.TAG_NAME, "summary").click()
    assert diff.is_displayed()
    diff.click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Pass Diff: 1.NoOpEliminationPass"
    assert browser.find_elements(By.CSS_SELECTOR, "td.diff-del")
    browser.back()
    browser.find_element(By.LINK_TEXT, "View original tlparse output →").click()
    assert browser.current_url == f"{site}tlparse_index.html"
    assert browser.find_element(By.PARTIAL_LINK_TEXT, "vllm_compilation_config_3.json")
