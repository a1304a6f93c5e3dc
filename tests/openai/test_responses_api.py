"""The OpenAI path end to end: our HTTP API -> the real `openai` SDK -> a Responses API server
on loopback. Faults are scripted on that server; nothing in the SDK or our code is patched."""

import asyncio
import json
import os
import sys
import time
import uuid

import httpx
import pytest
from invoke import LAMBDA_ENV, LambdaContext
from pydantic import SecretStr

from helpers.aws import secrets_client
from helpers.fake_openai import Step
from helpers.fakes import FailingProvider
from helpers.lambda_events import EVENTS, emf_blobs, value
from helpers.live_server import LiveServer
from helpers.logs import capture_logs
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.core.server_key import ServerKeyStore
from llm_server.providers.openai import OpenAIResponsesProvider
from llm_server.values import ChatMessage, GenerationRequest

CALLER_KEY = "sk-caller-" + "c" * 40
SERVER_KEY = "sk-server-" + "s" * 40


def build_app(fake, server_key_store=None, **overrides):
    settings = make_settings(**{"openai_base_url": fake.url, **overrides})
    local = FailingProvider(AssertionError("the local model must not be used"), name="local")
    service = Services.from_settings(settings, local=local, server_key=server_key_store)
    return create_app(settings, service)


def chat(server, **fields):
    body = {"session_id": "oa-1", "user_message": "Hello there", **fields}
    started = time.monotonic()
    headers = {"X-Api-Key": "client-1"}  # identifies the client, as free mode requires
    response = httpx.post(f"{server.url}/api/v1/chat", json=body, headers=headers, timeout=30)
    return response, time.monotonic() - started


@pytest.fixture
def served(fake):
    with LiveServer(build_app(fake, openai_max_retries=2)) as server:
        yield server


def test_success_maps_every_field_and_sends_the_composed_request(fake, served):
    response, _ = chat(
        served,
        openai_api_key=CALLER_KEY,
        role="tutor",
        instructions="Be brief.",
        conversation_history=["user: hi", "assistant: hello"],
        max_tokens=77,
        temperature=0.3,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response_text"] == "echo: Hello there"
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["api_key_source"] == "user"
    assert body["output_format"] == "text"
    assert body["temperature"] == 0.3
    assert body["created_at"] == "2026-11-25T12:00:00Z"  # the response's created_at, in UTC
    sent = fake.seen[0]
    usage_in = len(((sent.body["instructions"]) + " hi hello Hello there").split())
    assert body["input_tokens"] == usage_in and body["output_tokens"] == 3
    assert body["total_tokens_used"] == usage_in + 3
    assert sent.headers["authorization"] == f"Bearer {CALLER_KEY}"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["max_output_tokens"] == 77 and sent.body["temperature"] == 0.3
    assert sent.body["instructions"].endswith("## Role\ntutor\n\n## Instructions\nBe brief.")
    assert sent.body["input"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Hello there"},
    ]


def test_korean_round_trip(fake, served):
    response, _ = chat(served, openai_api_key=CALLER_KEY, user_message="서울 날씨 어때요?")
    assert response.json()["response_text"] == "echo: 서울 날씨 어때요?"
    assert fake.seen[0].body["instructions"] == "당신은 도움이 되는 AI 어시스턴트입니다."


@pytest.mark.parametrize(
    ("status", "upstream_code", "ours", "our_code", "attempts"),
    [
        (400, "model_not_found", 400, "model_not_found", 1),
        (404, "model_not_found", 404, "model_not_found", 1),  # passed on as OpenAI sent it
        (401, "invalid_api_key", 401, "invalid_api_key", 1),
        (403, "unsupported_country", 403, "permission_denied", 1),
        (429, "rate_limit_exceeded", 429, "rate_limited", 3),
        (500, None, 502, "upstream_error", 3),
        (503, None, 502, "upstream_error", 3),
    ],
)
def test_upstream_status_maps_to_ours(
    fake, served, status, upstream_code, ours, our_code, attempts
):
    fake.enqueue(*[Step(status=status, error_code=upstream_code, message="reason here")] * 3)
    response, _ = chat(served, openai_api_key=CALLER_KEY)
    assert response.status_code == ours
    body = response.json()
    assert body["success"] is False and body["session_id"] == "oa-1"
    assert body["error"]["code"] == our_code
    if ours in (400, 403, 502) and status != 404:
        assert "reason here" in body["error_message"]
    assert len(fake.seen) == attempts
    assert CALLER_KEY not in response.text


def test_a_slow_upstream_is_a_504_within_the_budget(fake):
    fake.enqueue(Step(delay=5))
    with LiveServer(build_app(fake, openai_timeout_seconds=1.0)) as server:
        response, _ = chat(server, openai_api_key=CALLER_KEY)
        answered = time.monotonic()
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert len(fake.seen) == 1  # the budget left no time for a second attempt
    assert answered < fake.seen[0].at + 5  # given up on, before the upstream's answer came


def test_the_lambda_deadline_bounds_the_upstream_call(fake, monkeypatch):
    """On Lambda the budget is the function's remaining time minus a margin."""
    from mangum import Mangum

    for name, default in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, default))
    fake.enqueue(Step(delay=6))
    app = build_app(
        fake,
        openai_timeout_seconds=25.0,
        lambda_time_margin_seconds=1.0,
        openai_http_client="httpx",  # as the template sets on Lambda
    )
    event = json.loads(EVENTS.joinpath("chat.json").read_text(encoding="utf-8"))
    event["body"] = json.dumps({"user_message": "hi", "openai_api_key": CALLER_KEY})
    response = Mangum(app, lifespan="off")(event, LambdaContext(timeout_seconds=3.0))
    answered = time.monotonic()
    assert response["statusCode"] == 504
    assert json.loads(response["body"])["error"]["code"] == "upstream_timeout"
    assert answered < fake.seen[0].at + 6  # the deadline ended the call, not the upstream


def test_connection_resets_are_retried_then_reported(fake, served):
    fake.enqueue(Step(reset=True))
    response, _ = chat(served, openai_api_key=CALLER_KEY)
    assert response.status_code == 200 and len(fake.seen) == 2
    fake.enqueue(*[Step(reset=True)] * 3)
    response, _ = chat(served, openai_api_key=CALLER_KEY)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"


def test_a_malformed_body_is_a_502(fake, served):
    fake.enqueue(Step(status=200, raw=b'{"id": "resp_1", "output": [tru'))
    response, _ = chat(served, openai_api_key=CALLER_KEY)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_malformed"


def test_429_then_success_waits_retry_after_and_counts(fake, served, capsys):
    fake.enqueue(Step(status=429, error_code="rate_limit_exceeded", headers={"retry-after": "1"}))
    with capture_logs() as logs:
        response, _ = chat(served, openai_api_key=CALLER_KEY)
    assert response.status_code == 200
    assert len(fake.seen) == 2
    assert fake.seen[1].at - fake.seen[0].at >= 1.0
    line = next(r for r in logs.records() if r["message"] == "request")
    assert line["upstream_attempts"] == 2 and line["api_key_source"] == "user"
    assert line["model"] == "gpt-4o-mini-2024-07-18" and line["output_tokens"] == 3
    assert line["upstream_ms"] >= 1000
    assert CALLER_KEY not in logs.text
    totals = [b for b in emf_blobs(capsys.readouterr().out) if "Requests" in b]
    assert value(totals[-1], "UpstreamRetries") == 1


def test_a_retry_after_beyond_the_budget_is_passed_to_the_caller_at_once(fake):
    fake.enqueue(Step(status=429, error_code="rate_limit_exceeded", headers={"retry-after": "30"}))
    with LiveServer(build_app(fake, openai_timeout_seconds=5.0)) as server:
        response, _ = chat(server, openai_api_key=CALLER_KEY)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert len(fake.seen) == 1  # passed on: waiting it out would have made a second attempt


def test_a_rejected_server_key_is_502_and_a_rejected_caller_key_is_401(fake):
    store = ServerKeyStore(make_settings(openai_api_key=SERVER_KEY))
    with LiveServer(build_app(fake, server_key_store=store)) as server:
        fake.enqueue(Step(status=401, error_code="invalid_api_key", message=f"bad {SERVER_KEY}"))
        as_server, _ = chat(server, free_mode=True)
        fake.enqueue(Step(status=401, error_code="invalid_api_key", message=f"bad {CALLER_KEY}"))
        as_caller, _ = chat(server, free_mode=True, openai_api_key=CALLER_KEY)
    assert as_server.status_code == 502
    assert as_server.json()["error"]["code"] == "server_key_rejected"
    assert as_caller.status_code == 401
    assert "rejected the key you sent in openai_api_key" in as_caller.json()["error_message"]
    for response in (as_server, as_caller):
        assert SERVER_KEY not in response.text and CALLER_KEY not in response.text


def test_normal_mode_without_a_key_is_401_when_openai_is_required(fake):
    with LiveServer(build_app(fake, llm_provider="openai")) as server:
        response, _ = chat(server)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    assert fake.seen == []


def test_free_mode_uses_the_key_from_secrets_manager(fake, moto_endpoint):
    client = secrets_client(moto_endpoint)
    name = f"llm-server/free/{uuid.uuid4().hex}"
    client.create_secret(Name=name, SecretString=json.dumps({"OPENAI_API_KEY": SERVER_KEY}))
    store = ServerKeyStore(make_settings(openai_secret_name=name), client)
    with LiveServer(build_app(fake, server_key_store=store)) as server:
        free, _ = chat(server, free_mode=True)
        normal, _ = chat(server, openai_api_key=CALLER_KEY)
    assert free.status_code == 200 and free.json()["api_key_source"] == "server"
    assert normal.json()["api_key_source"] == "user"
    assert fake.seen[0].headers["authorization"] == f"Bearer {SERVER_KEY}"
    assert fake.seen[1].headers["authorization"] == f"Bearer {CALLER_KEY}"
    assert SERVER_KEY not in free.text


def openai_status(app):
    return app.state.services.runner.status()["providers"]["openai"]


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_replies_and_streams_share_one_client_and_stopping_closes_it(fake, transport):
    """Whole replies and streams are POSTs on one client shared by every key, on either
    transport (httpx2 on Lambda), each with its caller's key."""
    app = build_app(fake, openai_http_client=transport)
    with LiveServer(app) as server:
        assert openai_status(app)["direct_session"] is False  # made on first use
        for key, stream in ((CALLER_KEY, False), (SERVER_KEY, True), (CALLER_KEY, True)):
            response, _ = chat(server, openai_api_key=key, stream=stream)
            assert response.status_code == 200
            assert "event: done" in response.text if stream else response.json()["response_text"]
        assert [s.headers["authorization"] for s in fake.seen] == [
            f"Bearer {CALLER_KEY}",
            f"Bearer {SERVER_KEY}",
            f"Bearer {CALLER_KEY}",
        ]
        assert [s.body.get("stream", False) for s in fake.seen] == [False, True, True]
        info = httpx.get(f"{server.url}/api/v1/system/info").json()
        assert info["providers"]["openai"]["direct_session"] is True
        assert CALLER_KEY not in json.dumps(info) and SERVER_KEY not in json.dumps(info)
    assert openai_status(app)["direct_session"] is False


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_over_aiohttp_calls_need_nothing_the_server_does_not_install(fake, monkeypatch, stream):
    """certifi comes with the test tools, not with the server (`make run`): a call needing it
    would fail on a fresh machine. The provider is called directly: the test's own HTTP
    client needs certifi."""
    monkeypatch.setitem(sys.modules, "certifi", None)  # `import certifi` raises ImportError
    provider = OpenAIResponsesProvider(base_url=fake.url, transport="aiohttp")
    message = ChatMessage(role="user", content="안녕하세요")
    request = GenerationRequest("", (message,), "gpt-4o-mini", 0.0, 16, SecretStr(CALLER_KEY))

    async def call() -> str:
        try:
            if not stream:
                return (await provider.generate(request)).text
            return "".join(
                [piece async for piece in provider.stream(request) if isinstance(piece, str)]
            )
        finally:
            await provider.aclose()

    assert asyncio.run(call()) == "echo: 안녕하세요"


def test_over_aiohttp_calls_go_through_the_proxy_the_environment_names(fake, monkeypatch):
    """HTTP_PROXY is honoured as the SDK honours it; the fake plays the proxy here."""
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the test's own calls go direct
    app = build_app(
        fake, openai_http_client="aiohttp", openai_base_url="http://upstream.invalid/v1"
    )
    with LiveServer(app) as server:
        whole, _ = chat(server, openai_api_key=CALLER_KEY)
        streamed, _ = chat(server, openai_api_key=CALLER_KEY, stream=True)
    assert whole.status_code == 200, whole.text
    assert streamed.status_code == 200 and "event: done" in streamed.text, streamed.text
    assert [seen.target for seen in fake.seen] == ["http://upstream.invalid/v1/responses"] * 2


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
def test_a_cookie_one_callers_reply_sets_is_never_sent_with_anothers_call(fake, http_client):
    """Every key shares one connection pool: it must keep no state from one call to the next."""
    fake.enqueue(Step(headers={"set-cookie": "tenant=first; Path=/"}), Step())
    by_name = fake.url.replace("127.0.0.1", "localhost")  # aiohttp keeps no cookie of an IP's
    app = build_app(fake, openai_http_client=http_client, openai_base_url=by_name)
    with LiveServer(app) as server:
        for key, stream in ((CALLER_KEY, False), (SERVER_KEY, True)):
            response, _ = chat(server, openai_api_key=key, stream=stream)
            assert response.status_code == 200, response.text
    assert [seen.headers.get("cookie") for seen in fake.seen] == [None, None]
