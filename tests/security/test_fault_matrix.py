"""Upstream faults through the whole stack, on every route that reaches OpenAI.

Each fault must give the right status (or, mid-stream, an in-band error), within a bounded time,
and leave the server serving with nothing stuck in progress.
"""

import time

import httpx
import pytest

from helpers.fake_openai import Step
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app

KEY = "sk-matrix-" + "m" * 40
FAULTS = {
    "timeout": (Step(delay=3), 504),
    "rate-limit": (Step(status=429, error_code="rate_limit_exceeded"), 429),
    "server-error": (Step(status=503), 502),
    "reset": (Step(reset=True), 502),
    "malformed": (Step(status=200, raw=b"<html>gateway</html>"), 502),
    "truncated": (Step(status=200, raw=b'{"id": "resp_1", "output": [{"type": "mess'), 502),
    "not-a-response": (Step(status=200, raw=b'{"id": "resp_1", "output": "surprise"}'), 502),
    "malformed-events": (
        Step(
            status=200,
            raw=b"event: response.created\ndata: {not json\n\n",
            headers={"content-type": "text/event-stream"},
        ),
        502,
    ),
}
ROUTES = {
    "chat": ("/api/v1/chat", {"user_message": "hi", "openai_api_key": KEY}),
    "completions": (
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    ),
    "responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}),
}


@pytest.fixture(params=["aiohttp", "httpx"])
def server(fake, request):
    """The SDK over each HTTP client: aiohttp (local server) and httpx2 (Lambda)."""
    settings = make_settings(
        openai_base_url=fake.url,
        openai_timeout_seconds=1.5,
        openai_max_retries=0,
        openai_http_client=request.param,
    )
    local = FailingProvider(AssertionError("no local model here"), name="local")
    service = Services.from_settings(settings, local=local)
    with LiveServer(create_app(settings, service)) as live:
        yield live


def post(server, route, stream=False):
    path, body = ROUTES[route]
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.post(
        f"{server.url}{path}", json={**body, "stream": stream}, headers=headers, timeout=30
    )


def assert_healthy(server):
    info = httpx.get(f"{server.url}/api/v1/system/info").json()
    assert info["requests_in_progress"] == 0


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_fault_gives_its_status_in_bounded_time(fake, server, route, fault, stream):
    step, status = FAULTS[fault]
    fake.enqueue(step)
    response = post(server, route, stream)
    answered = time.monotonic()
    assert response.status_code == status, response.text
    if step.delay:  # given up on within the budget, before the upstream would have answered
        assert answered < fake.seen[0].at + step.delay
    assert KEY not in response.text
    assert_healthy(server)
    assert post(server, route).status_code == 200  # and the next request is served


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_stream_cut_midway_ends_with_an_in_band_error(fake, server, route):
    fake.enqueue(Step(cut_stream_after=1))
    response = post(server, route, stream=True)
    assert response.status_code == 200  # the stream had started
    assert "echo:" in response.text
    assert "error" in response.text.split("echo:")[-1]
    assert "[DONE]" not in response.text and "event: done" not in response.text
    assert_healthy(server)
