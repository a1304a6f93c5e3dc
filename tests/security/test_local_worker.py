"""The one local model worker is never held for nobody: not past its budget, not by a caller who
left, not past SIGTERM. Each test asserts what the worker did, never how fast the machine was."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from helpers.live_server import LiveServer
from helpers.server_process import ServerProcess
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.local_llama import LocalLlamaProvider

MAX_TOKENS = 1500
# A grammar that cannot end before MAX_TOKENS: only being stopped ends the generation early.
ENDLESS = {"type": "array", "items": {"type": "integer"}, "minItems": 1000}
ENDLESS_FORMAT = {"type": "json_schema", "json_schema": {"name": "n", "schema": ENDLESS}}


class Ticking:
    """A clock that moves one second each time it is read, while `running`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.running = True

    def __call__(self) -> float:
        if self.running:
            self.now += 1
        return self.now


@pytest.fixture(scope="module")
def clock() -> Ticking:
    return Ticking()


@pytest.fixture(scope="module")
def provider(clock: Ticking) -> LocalLlamaProvider:
    return LocalLlamaProvider(timeout_seconds=5, clock=clock)


@pytest.fixture(scope="module")
def server(provider: LocalLlamaProvider) -> Iterator[LiveServer]:
    settings = make_settings()
    with LiveServer(create_app(settings, Services.from_settings(settings, local=provider))) as live:
        yield live


def wait_until_idle(provider: LocalLlamaProvider, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while provider.status()["generating"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not provider.status()["generating"], "the abandoned generation is still running"


def test_a_generation_past_its_budget_is_cut_off_and_the_next_one_runs(server, provider, clock):
    clock.running = True
    body = {"user_message": "Tell me a long story", "max_tokens": 200, "temperature": 0}
    late = httpx.post(f"{server.url}/api/v1/chat", json=body, timeout=120)
    assert late.status_code == 504
    assert late.json()["error"]["code"] == "generation_timeout"
    assert "LOCAL_GENERATION_TIMEOUT_SECONDS" in late.json()["error_message"]
    before = provider.status()["generated_tokens"]
    assert not provider.status()["generating"]
    short = httpx.post(f"{server.url}/api/v1/chat", json={**body, "max_tokens": 2}, timeout=120)
    assert short.status_code == 200
    assert provider.status()["generated_tokens"] > before


def drop_once_generating(
    provider: LocalLlamaProvider, url: str, path: str, body: dict, counter="generated_tokens"
) -> int:
    """Send a request, close its socket once the model has made a token; the count then."""
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    before = provider.status()[counter]
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        deadline = time.monotonic() + 120
        while provider.status()[counter] == before and time.monotonic() < deadline:
            time.sleep(0.01)
    return before


EMBEDDING = "SmolLM2-135M-Instruct.Q4_1-embedding"
MANY = [f"문장 {n}번: the worker reads one text at a time" for n in range(512)]


def test_an_embedding_past_its_budget_is_cut_off_and_the_next_request_runs(server, provider, clock):
    """The clock moves a second a text: five seconds of budget stop the request between two of
    its texts, long before its 512, and the worker takes the next request at once."""
    clock.running = True
    first = provider.status()["embedded_inputs"]
    late = httpx.post(
        f"{server.url}/v1/embeddings", json={"model": EMBEDDING, "input": MANY}, timeout=120
    )
    assert late.status_code == 504
    assert late.json()["error"]["code"] == "generation_timeout"
    assert "LOCAL_GENERATION_TIMEOUT_SECONDS" in late.json()["error"]["message"]
    assert not provider.status()["embedding"]
    before = provider.status()["embedded_inputs"]
    assert 5 <= before - first <= 6
    short = httpx.post(f"{server.url}/v1/embeddings", json={"model": EMBEDDING, "input": "짧다"})
    assert short.status_code == 200
    assert provider.status()["embedded_inputs"] == before + 1


def wait_until_no_request(url: str, limit: float = 120) -> None:
    """Until the server holds no request: a cancelled one has given back its slot."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/api/v1/system/info").json()["requests_in_progress"] == 0:
            return
        time.sleep(0.02)
    raise AssertionError("a request is still in progress")


def test_a_caller_who_leaves_stops_the_embedding(server, provider, clock):
    """The request ends (its slot given back) soon after the drop and submits no more texts:
    had it gone on for nobody, it would hold its slot until all 512 were read."""
    clock.running = False
    wait_until_no_request(server.url)
    body = {"model": EMBEDDING, "input": MANY}
    before = drop_once_generating(provider, server.url, "/v1/embeddings", body, "embedded_inputs")
    wait_until_no_request(server.url)
    # The worker takes jobs in turn: once this one is answered, the text that was on it when
    # the caller left (if one was) is done too.
    one = {"model": EMBEDDING, "input": "하나"}
    assert httpx.post(f"{server.url}/v1/embeddings", json=one).status_code == 200
    embedded = provider.status()["embedded_inputs"] - before
    assert 0 < embedded < len(MANY) // 2
    assert httpx.post(f"{server.url}/v1/embeddings", json=one).status_code == 200
    assert provider.status()["embedded_inputs"] - before == embedded + 1  # nothing else ran


def test_a_chat_takes_its_turn_between_a_long_embedding_requests_texts(server, provider, clock):
    """Each text is a job of its own on the one worker: a chat sent while 64 texts are being
    embedded is answered before they all are, and the embedding request still finishes."""
    clock.running = False
    wait_until_no_request(server.url)
    answers: list[httpx.Response] = []
    texts = MANY[:64]
    body = {"model": EMBEDDING, "input": texts}
    before = provider.status()["embedded_inputs"]
    long = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{server.url}/v1/embeddings", json=body, timeout=300)
        )
    )
    long.start()
    deadline = time.monotonic() + 120
    while provider.status()["embedded_inputs"] == before and time.monotonic() < deadline:
        time.sleep(0.01)
    chat = {"model": "local", "messages": [{"role": "user", "content": "안녕"}], "max_tokens": 2}
    answered = httpx.post(f"{server.url}/v1/chat/completions", json=chat, timeout=120)
    embedded_by_then = provider.status()["embedded_inputs"] - before
    long.join(timeout=300)
    assert answered.status_code == 200
    assert embedded_by_then < len(texts)
    assert answers and answers[0].status_code == 200
    assert provider.status()["embedded_inputs"] - before == len(texts)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/chat/completions",
            {"model": "local", "response_format": ENDLESS_FORMAT, "max_tokens": MAX_TOKENS},
        ),
        (
            "/v1/chat/completions",
            {
                "model": "local",
                "stream": True,
                "max_tokens": MAX_TOKENS,
                "tool_choice": "required",
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "put",
                            "parameters": {
                                "type": "object",
                                "properties": {"n": ENDLESS},
                                "required": ["n"],
                            },
                        },
                    }
                ],
            },
        ),
    ],
    ids=["whole-reply", "streamed-tool-call"],
)
def test_a_caller_who_leaves_stops_the_generation(server, provider, clock, path, body):
    """Neither a whole reply nor a held-back tool call sends a byte before it ends: the drop
    must still be seen, and the generation stop long before its MAX_TOKENS tokens."""
    clock.running = False
    wait_until_idle(provider)
    messages = [{"role": "user", "content": "숫자를 많이 세어 주세요"}]
    before = drop_once_generating(provider, server.url, path, {**body, "messages": messages})
    wait_until_idle(provider)
    generated = provider.status()["generated_tokens"] - before
    assert 0 < generated < MAX_TOKENS // 2
    info = httpx.get(f"{server.url}/api/v1/system/info").json()
    assert info["requests_in_progress"] == 0


def test_sigterm_stops_a_server_whose_worker_is_busy():
    with ServerProcess() as process:
        body = {
            "model": "local",
            "messages": [{"role": "user", "content": "count"}],
            "response_format": ENDLESS_FORMAT,
            "max_tokens": 4000,
            "stream": True,
        }
        started = threading.Event()

        def stream() -> None:
            try:
                with httpx.stream(
                    "POST", f"{process.url}/v1/chat/completions", json=body, timeout=120
                ) as response:
                    for _ in response.iter_bytes():
                        started.set()
            except httpx.HTTPError:
                pass
            started.set()

        threading.Thread(target=stream, daemon=True).start()
        assert started.wait(60)
        process.terminate()
        assert process.process is not None
        assert process.process.wait(timeout=60) is not None  # before: only SIGKILL stopped it
