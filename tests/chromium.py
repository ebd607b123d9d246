"""Headless Chromium for the browser tests: Debian's chromium and chromium-driver, driven
with Selenium (no browser download). `needs_chromium` skips a test module, with the reason,
where either is missing; CI installs both (.ci/run)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Chromium and its driver are not installed "
    "(apt-get install chromium chromium-driver; .ci/run does this)",
)


def driver() -> Iterator:
    """A headless Chromium WebDriver, quit when the generator is closed (a fixture body)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()
