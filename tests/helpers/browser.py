"""What the page tests ask of headless Chromium: elements by test id, waits, what went wrong."""

from __future__ import annotations

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def by_testid(driver, name: str):
    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def wait(driver, seconds: float = 30) -> WebDriverWait:
    """Waits that look again at an element the page has just replaced (a list re-rendered)."""
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def resources_elsewhere(driver, origin: str) -> list[str]:
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return [name for name in names if not name.startswith(origin + "/")]
