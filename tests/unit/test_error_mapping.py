"""Each failure maps to its HTTP status and error body, through a real HTTP round trip."""

import concurrent.futures
import time

import httpx
import pytest
from pydantic import SecretStr

from helpers.fakes import FailingProvider, StalledProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.core.server_key import ServerKeyStore
from llm_server.exceptions import (
    AuthenticationException,
    ConfigurationException,
    OpenAIClientException,
    PermissionException,
    RateLimitException,
    UpstreamTimeoutException,
    ValidationException,
)

CALLER_KEY = "sk-test-caller-" + "c" * 30
SERVER_KEY = "sk-test-server-" + "s" * 30


def serve(provider=None, local=None, **settings):
    settings = make_settings(**settings)
    service = Services.from_settings(
        settings,
        openai=provider or FailingProvider(AssertionError("openai must not be called")),
        local=local or FailingProvider(AssertionError("local must not be called"), name="local"),
        server_key=ServerKeyStore(settings),
    )
    return LiveServer(create_app(settings, service))


def post_chat(server, **fields):
    body = {"user_message": "안녕", "session_id": "err-1", **fields}
    headers = {"X-Api-Key": "client-1"}  # free mode needs a client credential
    return httpx.post(f"{server.url}/api/v1/chat", json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("error", "status", "error_type", "code"),
    [
        (
            ValidationException("bad model", code="upstream_bad_request", status_code=400),
            400,
            "invalid_request_error",
            "upstream_bad_request",
        ),
        (PermissionException("no access"), 403, "permission_error", "permission_denied"),
        (RateLimitException("slow down", retry_after=7), 429, "rate_limit_error", "rate_limited"),
        (ConfigurationException("misconfigured"), 500, "server_error", "configuration_error"),
        (OpenAIClientException("upstream broke"), 502, "upstream_error", "upstream_error"),
        (UpstreamTimeoutException("too slow"), 504, "upstream_error", "upstream_timeout"),
    ],
)
def test_provider_errors_map_to_status_and_body(error, status, error_type, code):
    with serve(FailingProvider(error)) as server:
        response = post_chat(server, openai_api_key=CALLER_KEY)
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False
    assert body["session_id"] == "err-1"
    assert body["error_message"] == error.message
    assert (body["error"]["type"], body["error"]["code"]) == (error_type, code)
    if status == 429:
        assert response.headers["retry-after"] == "7"


def test_a_rejected_caller_key_is_the_callers_401():
    with serve(FailingProvider(AuthenticationException("rejected"))) as server:
        response = post_chat(server, openai_api_key=CALLER_KEY)
    assert response.status_code == 401
    assert "rejected the key you sent in openai_api_key" in response.json()["error_message"]
    assert CALLER_KEY not in response.text


def test_a_rejected_server_key_is_a_502_not_the_callers_fault():
    provider = FailingProvider(AuthenticationException("rejected"))
    with serve(provider, openai_api_key=SERVER_KEY) as server:
        response = post_chat(server, free_mode=True)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "server_key_rejected"
    assert provider.calls[0].api_key == SecretStr(SERVER_KEY)
    assert SERVER_KEY not in response.text


def test_openai_mode_without_a_key_is_a_401_that_says_what_to_do():
    with serve(llm_provider="openai") as server:
        response = post_chat(server)
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "missing_api_key"
    assert "free mode" in body["error_message"] and "openai_api_key" in body["error_message"]


def test_auto_mode_sends_keyless_requests_to_the_local_model():
    local = FailingProvider(OpenAIClientException("local reached"), name="local")
    with serve(local=local) as server:
        response = post_chat(server, free_mode=True)
    assert response.json()["error_message"] == "local reached"
    assert local.calls[0].api_key is None


def test_an_unexpected_error_is_a_500_that_leaks_nothing():
    with serve(FailingProvider(RuntimeError("secret internals sk-leak-1234567890"))) as server:
        response = post_chat(server, openai_api_key=CALLER_KEY)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "internals" not in response.text and "sk-leak" not in response.text


def test_over_the_concurrency_cap_answers_429_at_once_and_recovers():
    stalled = StalledProvider()
    with serve(local=stalled, max_concurrent_requests=2, max_concurrent_per_client=2) as server:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            held = [pool.submit(post_chat, server) for _ in range(2)]
            deadline = time.monotonic() + 10
            while stalled.started < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            refused = post_chat(server)
            stalled.release.set()
            assert [f.result().status_code for f in held] == [200, 200]
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "server_busy"
        assert post_chat(server).status_code == 200
