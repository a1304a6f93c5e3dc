"""The server's own pages in a real browser, offline: the API docs and the chat playground.

Headless Chromium on the real server (uvicorn on loopback) in front of the Responses API
stand-in, which answers "echo: <the message>", streamed. Nothing the pages load may come from
another origin (the machine has no network, and the pages' policy forbids it anyway).
"""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select

from helpers.browser import by_testid, console_errors, resources_elsewhere, wait
from helpers.fake_openai import Step
from helpers.live_server import LiveServer
from helpers.logs import capture_logs
from helpers.tenants import tenant_app

CLIENT = "client-1"


@pytest.fixture
def server(fake):
    app, _ = tenant_app("sqlite", None, fake, openai_models="gpt-4o,gpt-4.1-mini")
    with LiveServer(app) as live:
        yield live


def open_playground(driver, server) -> None:
    driver.get(server.url + "/")
    wait(driver).until(lambda d: len(Select(by_testid(d, "model")[0]).options) > 0)
    key = by_testid(driver, "api-key")[0]
    key.send_keys(CLIENT)
    by_testid(driver, "free-mode")[0].click()


def say(driver, text: str) -> None:
    """Type a message and press Enter, as a user would; wait for the reply's figures."""
    before = len(by_testid(driver, "usage"))
    box = by_testid(driver, "message")[0]
    for i, line in enumerate(text.split("\n")):
        if i:
            box.send_keys(Keys.SHIFT, Keys.ENTER)
        box.send_keys(line)
    box.send_keys(Keys.ENTER)
    wait(driver).until(lambda d: len(by_testid(d, "usage")) > before)


def test_the_docs_render_every_operation_offline(browser, server):
    browser.get(server.url + "/docs")
    wait(browser).until(ready.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/v1/chat", "/v1/chat/completions", "/v1/responses", "/api/v1/usage"} <= paths
    assert resources_elsewhere(browser, server.url) == []
    assert console_errors(browser) == []


def test_a_korean_message_streams_in_and_a_second_turn_continues_the_session(browser, server):
    open_playground(browser, server)
    models = [o.text for o in Select(by_testid(browser, "model")[0]).options]
    assert {"gpt-4o", "gpt-4.1-mini"} <= set(models)
    assert not [model for model in models if "embed" in model]  # listed, but not for chat
    say(browser, "안녕하세요, 서울 날씨 알려줘")
    say(browser, "고마워요\n내일은?")
    replies = [r.find_element(By.CSS_SELECTOR, ".text").text for r in by_testid(browser, "reply")]
    assert replies == ["echo: 안녕하세요, 서울 날씨 알려줘", "echo: 고마워요\n내일은?"]
    figures = by_testid(browser, "usage")[-1].text
    assert "tokens" in figures and " in / " in figures and "turn $" in figures
    assert "month $" in figures
    session = by_testid(browser, "session")[0].get_attribute("value")
    stored = httpx.get(
        f"{server.url}/api/v1/sessions/{session}", headers={"X-Api-Key": CLIENT}, timeout=30
    ).json()
    asked = ["안녕하세요, 서울 날씨 알려줘", "고마워요\n내일은?"]
    assert [t["user"] for t in stored["turns"]] == asked
    assert resources_elsewhere(browser, server.url) == []
    assert console_errors(browser) == []


def test_a_reply_made_of_html_is_shown_as_text_and_runs_nothing(browser, server):
    open_playground(browser, server)
    attack = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>'
    say(browser, attack)
    reply = by_testid(browser, "reply")[-1]
    assert reply.find_element(By.CSS_SELECTOR, ".text").text == f"echo: {attack}"
    assert reply.find_elements(By.CSS_SELECTOR, "img, script, b") == []
    assert browser.execute_script("return window.pwned") is None
    assert resources_elsewhere(browser, server.url) == []
    assert console_errors(browser) == []


def test_a_stopped_reply_really_cancels_the_request(browser, server, fake):
    """The upstream stalls for 30 s after a first delta; Stop ends the request on the server."""
    fake.enqueue(Step(stall_after=1, stall=30))
    open_playground(browser, server)
    with capture_logs() as logs:
        by_testid(browser, "message")[0].send_keys("천천히 답해 주세요", Keys.ENTER)
        wait(browser).until(lambda d: by_testid(d, "reply") and by_testid(d, "reply")[-1].text)
        by_testid(browser, "stop")[0].click()
        wait(browser).until(lambda d: [u.text for u in by_testid(d, "usage")] == ["stopped"])
        ended = wait(browser, 10).until(lambda _: chat_lines(logs))
    assert ended[0]["error_type"] == "client_disconnected", ended
    assert by_testid(browser, "send")[0].is_enabled()


def chat_lines(logs) -> list[dict]:
    return [r for r in logs.records() if r["message"] == "request" and r["path"] == "/api/v1/chat"]


def test_errors_show_their_status_and_code(browser, server):
    browser.get(server.url + "/")
    wait(browser).until(lambda d: len(Select(by_testid(d, "model")[0]).options) > 0)
    by_testid(browser, "message")[0].send_keys("키 없이", Keys.ENTER)  # anonymous, no free mode
    error = by_testid(browser, "error")[0]
    wait(browser).until(lambda _: error.text)
    assert error.text.startswith("401 ") and ": " in error.text, error.text


def test_a_session_is_resumed_by_its_id(browser, server):
    open_playground(browser, server)
    say(browser, "첫 번째 질문")
    session = by_testid(browser, "session")[0].get_attribute("value")
    browser.refresh()
    open_playground(browser, server)
    field = by_testid(browser, "session")[0]
    field.clear()
    field.send_keys(session)
    browser.find_element(By.ID, "load-session").click()
    wait(browser).until(lambda d: len(by_testid(d, "reply")) == 1)
    assert by_testid(browser, "reply")[0].find_element(By.CSS_SELECTOR, ".text").text == (
        "echo: 첫 번째 질문"
    )
    assert resources_elsewhere(browser, server.url) == []


def test_the_pages_forbid_inline_scripts_other_origins_and_sniffing(server):
    for path in ("/", "/docs", "/static/playground/playground.js"):
        response = httpx.get(server.url + path, timeout=30)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    api = httpx.get(f"{server.url}/api/v1/health", timeout=30)
    assert api.headers["cache-control"] == "no-store"
    assert httpx.get(f"{server.url}/static/../app.py", timeout=30).status_code == 404
    assert httpx.get(f"{server.url}/static/swagger-ui/LICENSE", timeout=30).status_code == 404


def test_a_page_on_another_origin_cannot_run_a_turn_or_write_a_session(browser, server, fake):
    """A no-cors `fetch` of a `Blob` sends no Content-Type, so browsers send it unasked: the
    chat route answered it 200, running a turn and writing the session from any page."""
    import http.server
    import threading

    from helpers.server_process import free_port

    body = '{"user_message": "hi", "session_id": "victim", "free_mode": true}'
    page = (
        "<!doctype html><script>"
        f"fetch({server.url + '/api/v1/chat'!r}, {{method: 'POST', mode: 'no-cors', "
        f"headers: {{'X-Api-Key': {CLIENT!r}}}, body: new Blob([{body!r}])}})"
        ".then(() => { document.title = 'sent'; }, () => { document.title = 'failed'; });"
        "</script>"
    ).encode()

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Attacker)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://localhost:{other.server_address[1]}/")  # another origin
        wait(browser).until(lambda d: d.title in ("sent", "failed"))
    finally:
        other.shutdown()
        other.server_close()
    session = httpx.get(f"{server.url}/api/v1/sessions/victim", headers={"X-Api-Key": CLIENT})
    assert fake.seen == []  # no turn ran
    assert session.status_code == 404  # and nothing was written


def test_a_turn_without_a_key_asks_nothing_that_must_fail(browser, local_server):
    """The playground asked `GET /api/v1/usage` after every reply, key or not: without one each
    turn logged a 401 in the browser's console. It asks only when it can be answered."""
    browser.get(local_server.url + "/")
    wait(browser).until(lambda d: len(Select(by_testid(d, "model")[0]).options) > 0)
    browser.execute_script("document.getElementById('max-tokens').value = '8'")  # a short reply
    say(browser, "안녕")
    assert by_testid(browser, "reply")[-1].find_element(By.CSS_SELECTOR, ".text").text
    assert "month $" not in by_testid(browser, "usage")[-1].text
    assert console_errors(browser) == []
