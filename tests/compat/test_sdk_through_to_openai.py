"""The SDK against LLM Server, which forwards to a Responses API server on loopback."""

import threading
import time

import httpx
import pytest

import openai
from helpers.fake_openai import Step
from helpers.fakes import FailingProvider, StalledProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.core.server_key import ServerKeyStore

CALLER_KEY = "sk-compat-" + "c" * 40
SERVER_KEY = "sk-server-" + "s" * 40
MESSAGES = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "안녕 친구"}]


def serve(fake, local=None, **overrides):
    settings = make_settings(openai_base_url=fake.url, **overrides)
    local = local or FailingProvider(AssertionError("no local model here"), name="local")
    store = ServerKeyStore(settings)
    service = Services.from_settings(settings, local=local, server_key=store)
    return LiveServer(create_app(settings, service))


def client(server, key=CALLER_KEY):
    return openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key=key,
        max_retries=0,
        default_headers={"X-Api-Key": "client-1"},  # free mode needs a client credential
    )


def test_the_bearer_key_reaches_openai_and_the_stream_is_relayed(fake):
    with serve(fake) as server, client(server) as sdk:
        whole = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        chunks = list(
            sdk.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert whole.choices[0].message.content == "echo: 안녕 친구"
    assert whole.model == "gpt-4o-mini-2024-07-18"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["echo: ", "안녕 ", "친구"]  # one upstream delta, one chunk
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens
    for seen in fake.seen:
        assert seen.headers["authorization"] == f"Bearer {CALLER_KEY}"
        assert seen.body["instructions"] == "Be kind."
    assert [s.body.get("stream", False) for s in fake.seen] == [False, True]


def test_responses_api_round_trip(fake):
    with serve(fake) as server, client(server) as sdk:
        response = sdk.responses.create(model="gpt-4o-mini", input="hello", max_output_tokens=20)
        with sdk.responses.stream(model="gpt-4o-mini", input="hello") as stream:
            final = stream.get_final_response()
    assert response.output_text == final.output_text == "echo: hello"
    assert fake.seen[0].body["max_output_tokens"] == 20


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (429, openai.RateLimitError),
        (500, openai.APIStatusError),
    ],
)
def test_upstream_errors_raise_the_matching_sdk_class(fake, status, error_class):
    fake.enqueue(*[Step(status=status, error_code="some_code", message="upstream says no")] * 3)
    with serve(fake, openai_max_retries=0) as server, client(server) as sdk:
        with pytest.raises(error_class) as caught:
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    expected = 502 if status == 500 else status
    assert caught.value.status_code == expected
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    assert CALLER_KEY not in str(caught.value.body)


def test_an_error_before_the_stream_starts_is_a_plain_http_error(fake):
    fake.enqueue(Step(status=401, error_code="invalid_api_key"))
    with serve(fake) as server, client(server) as sdk:
        with pytest.raises(openai.AuthenticationError):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
def test_a_failure_mid_stream_is_reported_in_band(fake, http_client):
    fake.enqueue(Step(cut_stream_after=1))
    with serve(fake, openai_http_client=http_client) as server, client(server) as sdk:
        stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError) as caught:
            for _ in stream:
                pass
    assert "stream broke off before the response was complete" in str(caught.value)


def test_without_a_key_free_mode_is_the_servers_setting(fake):
    with serve(fake, llm_provider="openai", openai_api_key=SERVER_KEY) as server:
        with client(server, key="EMPTY") as sdk, pytest.raises(openai.AuthenticationError):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with (
        serve(
            fake, llm_provider="openai", openai_api_key=SERVER_KEY, openai_compat_free_mode=True
        ) as server,
        client(server, key="EMPTY") as sdk,
    ):
        reply = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content == "echo: 안녕 친구"
    assert fake.seen[-1].headers["authorization"] == f"Bearer {SERVER_KEY}"


def test_a_busy_server_raises_rate_limit_error_with_retry_after(fake):
    stalled = StalledProvider()
    with serve(fake, local=stalled, max_concurrent_requests=1) as server:
        holder = threading.Thread(
            target=httpx.post,
            args=(f"{server.url}/api/v1/chat",),
            kwargs={"json": {"user_message": "hold"}, "timeout": 30},
        )
        holder.start()
        deadline = time.monotonic() + 10
        while not stalled.started and time.monotonic() < deadline:
            time.sleep(0.01)
        with client(server, key="EMPTY") as sdk, pytest.raises(openai.RateLimitError) as caught:
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stalled.release.set()
        holder.join()
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body["code"] == "server_busy"
