"""Local model throughput: tokens/s through the server versus llama.cpp called directly.

    make bench-tokens    (or: PYTHONPATH=functions:tests python bench/local_tokens.py)

Same model file, same prompt, temperature 0, a fixed number of output tokens: llama.cpp alone
(`Llama.create_chat_completion` in this process) and `/api/v1/chat` and `/v1/chat/completions`
over real HTTP to the server in its own process (`python -m llm_server`, as `make run` starts
it), taken in turns so that noise hits all three alike. Medians of --runs, in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx

from llm_server.config.settings import DEFAULT_SYSTEM_MESSAGE
from llm_server.providers.local_worker import bundled_model_path
from processes import free_port, local_server, stop

PROMPT = "Write a long story about a lighthouse keeper and the sea."
SYSTEM = DEFAULT_SYSTEM_MESSAGE  # what /api/v1/chat sends; the other two send it too
CACHED = "llama.cpp, prompt cached"  # what reusing the KV cache would buy (not the yardstick)


def direct(llama, max_tokens: int, from_scratch: bool = True) -> float:
    """Tokens/s of llama.cpp alone, with the same settings the provider uses.

    At temperature 0 the provider reads the prompt from scratch (`llama.reset()`: the same
    request then gets the same reply, and no tenant's latency shows what another's prompt
    left in the cache); `from_scratch=False` resumes from the KV cache of the last call.
    """
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    started = time.perf_counter()
    if from_scratch:
        llama.reset()
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
    from llama_cpp import Llama

    llama = Llama(
        model_path=str(bundled_model_path()), n_ctx=2048, n_threads=os.cpu_count(), verbose=False
    )
    port = free_port()
    server = local_server(port)
    paths = ("/api/v1/chat", "/v1/chat/completions")
    results: dict[str, list[float]] = {"llama.cpp alone": [], CACHED: []}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
            direct(llama, 8)  # warm-ups
            for path in paths:
                via(http, path, 8)
            for _ in range(args.runs):
                results["llama.cpp alone"].append(direct(llama, args.max_tokens))
                results[CACHED].append(direct(llama, args.max_tokens, from_scratch=False))
                for path in paths:
                    results.setdefault(path, []).append(via(http, path, args.max_tokens))
    finally:
        stop(server)
    base = statistics.median(results["llama.cpp alone"])
    print(f"tokens/s, median of {args.runs} runs of {args.max_tokens} output tokens:")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"  {name:<26} {median:6.1f}  ({median / base:.1%} of llama.cpp alone)")


if __name__ == "__main__":
    main()
