"""Headless Chromium (Debian's chromium and chromium-driver), driven by Selenium, on loopback."""

from __future__ import annotations

import shutil
import tempfile

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    """A fresh headless Chromium; `make test` installs it when missing."""
    if not shutil.which("chromium") or not shutil.which(CHROMEDRIVER):
        pytest.fail("Chromium is not installed: `make test` installs chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    # No network of its own (this machine has none): no background, component or sync traffic.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        "--lang=ko-KR",
        f"--user-data-dir={tempfile.mkdtemp()}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
