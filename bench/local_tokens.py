"""Local model throughput: tokens/s through the server versus llama.cpp called directly.

    make bench-tokens    (or: PYTHONPATH=functions:tests python bench/local_tokens.py)

Same model file, same prompt, temperature 0, a fixed number of output tokens; llama.cpp alone
(`Llama.create_chat_completion` in this process), then `/api/v1/chat` and `/v1/chat/completions`
over real HTTP to a server in this process. Medians of --runs, in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx

from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import create_app
from llm_server.config.settings import DEFAULT_SYSTEM_MESSAGE
from llm_server.providers.local_llama import LocalLlamaProvider, bundled_model_path
from llm_server.services.chat_service import ChatService

PROMPT = "Write a long story about a lighthouse keeper and the sea."
SYSTEM = DEFAULT_SYSTEM_MESSAGE  # what /api/v1/chat sends; the other two send it too


def direct(max_tokens: int) -> float:
    """Tokens/s of llama.cpp alone, with the same settings the provider uses."""
    from llama_cpp import Llama

    llama = Llama(
        model_path=str(bundled_model_path()), n_ctx=2048, n_threads=os.cpu_count(), verbose=False
    )
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    started = time.perf_counter()
    result = llama.create_chat_completion(messages=messages, temperature=0, max_tokens=max_tokens)
    return result["usage"]["completion_tokens"] / (time.perf_counter() - started)


def via(http: httpx.Client, path: str, max_tokens: int) -> float:
    if path == "/api/v1/chat":
        body = {"user_message": PROMPT, "max_tokens": max_tokens, "temperature": 0}
    else:
        body = {
            "model": "local",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": PROMPT},
            ],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
    started = time.perf_counter()
    reply = http.post(path, json=body).json()
    elapsed = time.perf_counter() - started
    usage = reply.get("usage") or reply
    tokens = usage.get("completion_tokens", usage.get("output_tokens"))
    return tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()

    settings = make_settings(sessions_enabled=False)
    service = ChatService.from_settings(settings, local=LocalLlamaProvider())
    results = {"llama.cpp alone": [direct(args.max_tokens) for _ in range(args.runs)]}
    with LiveServer(create_app(settings, service)) as server:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            for path in ("/api/v1/chat", "/v1/chat/completions"):
                via(http, path, 8)  # warm-up: the model loads
                results[path] = [via(http, path, args.max_tokens) for _ in range(args.runs)]
    base = statistics.median(results["llama.cpp alone"])
    print(f"tokens/s, median of {args.runs} runs of {args.max_tokens} output tokens:")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"  {name:<24} {median:6.1f}  ({median / base:.1%} of llama.cpp alone)")


if __name__ == "__main__":
    main()
