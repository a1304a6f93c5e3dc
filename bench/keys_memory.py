"""Memory per distinct caller key: the server's RSS after requests with one key vs many.

    make bench-keys                      (this tree alone)
    make bench-keys COMPARE=<commit>     (that commit side by side, in the same run)

Each server runs as `make run` starts it, on the OpenAI provider, in front of bench/fast_upstream
on loopback. 200 requests with one caller key, then `--keys` (5,000) requests each with its own
well-formed key (any `sk-...` of the right length passes the shape check; the upstream accepts
all). Reports RSS after each phase and the requests/s of the distinct-key phase.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from processes import code_variants, free_port, llm_server, stop

MIB = 1024 * 1024
HERE = Path(__file__).resolve().parent


async def send(port: int, keys: list[str], concurrency: int = 32) -> float:
    """POST one chat per key, `concurrency` at a time; return requests/s."""
    queue = list(keys)
    started = time.perf_counter()

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            key = queue.pop()
            body = {"user_message": "hi", "openai_api_key": key, "max_tokens": 8}
            response = await client.post("/api/v1/chat", json=body)
            response.raise_for_status()

    limits = httpx.Limits(max_connections=concurrency)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return len(keys) / (time.perf_counter() - started)


def measure(upstream: str, code: Path | None, distinct: int) -> dict[str, float]:
    port = free_port()
    server = llm_server(
        upstream,
        port,
        code,
        OPENAI_MAX_RETRIES="0",
        LOG_LEVEL="WARNING",
        MAX_CONCURRENT_REQUESTS="1000",
        MAX_CONCURRENT_PER_CLIENT="1000",
    )
    try:
        process = psutil.Process(server.pid)
        asyncio.run(send(port, ["sk-bench-one-" + "k" * 30] * 200))
        one_key = process.memory_info().rss / MIB
        keys = [f"sk-bench-{index:08d}-" + "k" * 24 for index in range(distinct)]
        rate = asyncio.run(send(port, keys))
        return {"one_key": one_key, "many_keys": process.memory_info().rss / MIB, "rate": rate}
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=5000)
    parser.add_argument("--compare", help="a commit to measure side by side")
    args = parser.parse_args()
    port = free_port()
    argv = [sys.executable, str(HERE / "fast_upstream.py"), "--port", str(port)]
    upstream = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert upstream.stdout and upstream.stdout.readline().strip() == b"ready"
    try:
        with code_variants(args.compare) as variants:
            url = f"http://127.0.0.1:{port}/v1"
            results = [(name, measure(url, code, args.keys)) for name, code in variants]
    finally:
        stop(upstream)
    print(f"{'code':<14}{'RSS, 1 key':>12}{f'RSS, {args.keys} keys':>16}{'added':>10}{'req/s':>8}")
    for name, r in results:
        print(
            f"{name:<14}{r['one_key']:>10.1f} M{r['many_keys']:>14.1f} M"
            f"{r['many_keys'] - r['one_key']:>8.1f} M{r['rate']:>8.0f}"
        )


if __name__ == "__main__":
    main()
