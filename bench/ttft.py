"""Time to first token: through LLM Server versus the provider called directly, in one run.

    make bench-ttft        (or: PYTHONPATH=functions:tests python bench/ttft.py [--runs 15])

Two providers: the local llama.cpp model, and a Responses API server on loopback (the test
suite's stand-in for OpenAI, answering at once). For each: the provider alone, then through the
server's `/v1/chat/completions` and `/api/v1/chat` streams over real HTTP. Prints medians and
the server's added milliseconds. Loopback only; bounded runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

import openai
from helpers.fake_openai import FakeOpenAI
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.local_llama import LocalLlamaProvider
from llm_server.providers.openai import OpenAIResponsesProvider
from llm_server.values import ChatMessage, GenerationRequest

QUESTION = "Tell me about the sea."
KEY = "sk-bench-" + "b" * 40


def first_token_seconds(stream_factory: Callable[[], float], runs: int) -> list[float]:
    """Run `stream_factory` (which returns its own time to first token) `runs` times."""
    stream_factory()  # warm-up: model loaded, connections open
    return [stream_factory() for _ in range(runs)]


def direct_provider(provider, api_key=None) -> Callable[[], float]:
    request = GenerationRequest(
        instructions="",
        messages=(ChatMessage("user", QUESTION),),
        model="gpt-4o-mini",
        temperature=0.0,
        max_tokens=8,
        api_key=api_key,
        key_source="user" if api_key else "none",
    )

    async def once() -> float:
        started = time.perf_counter()
        stream = provider.stream(request)
        await anext(stream)
        elapsed = time.perf_counter() - started
        await stream.aclose()
        return elapsed

    loop = asyncio.new_event_loop()
    return lambda: loop.run_until_complete(once())


def via_completions(url: str, key: str) -> Callable[[], float]:
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)

    def once() -> float:
        started = time.perf_counter()
        stream = sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=8,
            temperature=0,
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                elapsed = time.perf_counter() - started
                stream.close()
                return elapsed
        raise RuntimeError("no token")

    return once


def via_chat_api(url: str, key: str) -> Callable[[], float]:
    http = httpx.Client(base_url=url, timeout=60)
    body = {"user_message": QUESTION, "max_tokens": 8, "temperature": 0, "stream": True}
    if key.startswith("sk-"):
        body["openai_api_key"] = key

    def once() -> float:
        started = time.perf_counter()
        with http.stream("POST", "/api/v1/chat", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("event: delta"):
                    return time.perf_counter() - started
        raise RuntimeError("no token")

    return once


def report(name: str, direct: list[float], paths: dict[str, list[float]]) -> None:
    base = statistics.median(direct) * 1000
    print(f"\n{name}: provider alone, median time to first token {base:.1f} ms")
    for path, samples in paths.items():
        median = statistics.median(samples) * 1000
        print(
            f"  via {path:<22} {median:7.1f} ms   (+{median - base:.1f} ms, {median / base:.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs

    local = LocalLlamaProvider()
    settings = make_settings()
    app = create_app(settings, Services.from_settings(settings, local=local))
    with LiveServer(app) as server:
        direct = first_token_seconds(direct_provider(local), runs)
        paths = {
            "/v1/chat/completions": first_token_seconds(via_completions(server.url, "EMPTY"), runs),
            "/api/v1/chat": first_token_seconds(via_chat_api(server.url, "EMPTY"), runs),
        }
    report("local model (llama.cpp, SmolLM2-135M)", direct, paths)

    with FakeOpenAI() as upstream:
        settings = make_settings(openai_base_url=upstream.url)
        service = Services.from_settings(settings, local=local)
        provider = OpenAIResponsesProvider(base_url=upstream.url)
        direct = first_token_seconds(direct_provider(provider, SecretStr(KEY)), runs)
        with LiveServer(create_app(settings, service)) as server:
            paths = {
                "/v1/chat/completions": first_token_seconds(via_completions(server.url, KEY), runs),
                "/api/v1/chat": first_token_seconds(via_chat_api(server.url, KEY), runs),
            }
    report("Responses API server on loopback (answers at once)", direct, paths)


if __name__ == "__main__":
    main()
