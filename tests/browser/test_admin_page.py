"""The operator's page (`/admin`) in headless Chromium: keys made, watched, edited, rotated and
revoked through it, against the real server; what the server says is shown as text."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready

from helpers.browser import by_testid, console_errors, resources_elsewhere, wait
from helpers.gateway_keys import ADMIN_KEY, admin, chat, code, create_key, keyed_app
from helpers.live_server import LiveServer


@pytest.fixture
def server(fake):
    app, _ = keyed_app("sqlite", None, fake, openai_models="gpt-4o")
    with LiveServer(app) as live:
        yield live


def rows(driver) -> list:
    return by_testid(driver, "key-row")


def unlock(driver, server, key: str = ADMIN_KEY) -> None:
    driver.get(server.url + "/admin")
    by_testid(driver, "admin-key")[0].send_keys(key)
    by_testid(driver, "unlock")[0].submit()


def fill(driver, **fields: str) -> None:
    for name, value in fields.items():
        field = driver.find_element(By.ID, f"f-{name}")
        field.clear()
        field.send_keys(value)
    by_testid(driver, "save")[0].click()


def accept(driver) -> None:
    wait(driver, 10).until(ready.alert_is_present()).accept()


def test_an_operator_makes_watches_edits_rotates_and_revokes_a_key(browser, server):
    unlock(browser, server)
    wait(browser).until(lambda d: not d.find_element(By.ID, "console").get_attribute("hidden"))
    fill(browser, name="team-a", models="gpt-4o-mini", rpm="3", budget="5")
    wait(browser).until(lambda d: by_testid(d, "secret-value")[0].text.startswith("llms_"))
    secret = by_testid(browser, "secret-value")[0].text
    (made,) = admin(server, "GET", "/keys").json()["data"]
    assert (made["models"], made["rpm"], made["monthly_budget_usd"]) == (["gpt-4o-mini"], 3, 5.0)
    assert [chat(server, secret).status_code for _ in range(2)] == [200, 200]
    create_key(server, name="team-b")  # made elsewhere: the page shows it on reload

    unlock(browser, server)
    wait(browser).until(lambda d: len(rows(d)) == 2)
    first = rows(browser)[0]
    assert first.find_elements(By.TAG_NAME, "td")[0].text == "team-a"
    assert "$" in first.find_elements(By.TAG_NAME, "td")[8].text
    bars = browser.find_elements(By.CSS_SELECTOR, "#spend-chart rect.bar")
    widths = [float(bar.get_attribute("width")) for bar in bars]
    assert len(bars) == 2 and widths[0] > widths[1] >= 1  # team-a spent, team-b did not
    points = first.find_element(By.CSS_SELECTOR, "polyline").get_attribute("points").split()
    assert len(points) == 30 and points[-1] != points[0]  # today's spend rises off the floor

    first.find_element(By.CSS_SELECTOR, '[data-testid="edit"]').click()
    fill(browser, rpm="10")
    wait(browser).until(lambda d: rows(d)[0].find_elements(By.TAG_NAME, "td")[4].text == "10")

    rows(browser)[0].find_element(By.CSS_SELECTOR, '[data-testid="rotate"]').click()
    accept(browser)
    wait(browser).until(lambda d: by_testid(d, "secret-value")[0].text not in ("", secret))
    rotated = by_testid(browser, "secret-value")[0].text
    assert code(chat(server, secret)) == "invalid_client_key"
    assert chat(server, rotated).status_code == 200

    wait(browser).until(
        lambda d: rows(d)[0].find_elements(By.CSS_SELECTOR, '[data-testid="revoke"]')
    )
    rows(browser)[0].find_element(By.CSS_SELECTOR, '[data-testid="revoke"]').click()
    accept(browser)
    wait(browser).until(lambda d: rows(d)[0].find_elements(By.TAG_NAME, "td")[2].text == "revoked")
    assert code(chat(server, rotated)) == "key_revoked"
    assert console_errors(browser) == []
    assert resources_elsewhere(browser, server.url) == []


def test_a_wrong_admin_key_is_refused_and_the_page_shows_why(browser, server):
    unlock(browser, server, key="not-the-admin-key")
    error = by_testid(browser, "error")[0]
    wait(browser).until(lambda _: error.text)
    assert error.text.startswith("401 invalid_admin_key")
    assert browser.find_element(By.ID, "console").get_attribute("hidden") is not None


def test_a_key_named_in_html_is_shown_as_text_and_runs_nothing(browser, server):
    attack = '<img src=x onerror="window.pwned=1"><b>bold</b>'
    create_key(server, name=attack, metadata={"note": "<script>window.pwned=2</script>"})
    unlock(browser, server)
    wait(browser).until(lambda d: len(rows(d)) == 1)
    assert rows(browser)[0].find_elements(By.TAG_NAME, "td")[0].text == attack
    assert browser.find_elements(By.CSS_SELECTOR, "#rows img, #rows b, #rows script") == []
    assert browser.execute_script("return window.pwned") is None


def test_the_page_has_the_other_pages_policy(server):
    page = httpx.get(server.url + "/admin", timeout=30)
    script = httpx.get(server.url + "/static/admin/admin.js", timeout=30)
    for response in (page, script):
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert "connect-src 'self'" in policy
    assert ADMIN_KEY not in page.text  # the page holds no secret: its user types the key
