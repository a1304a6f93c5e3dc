"""On-demand soak: many concurrent clients against the local server, then SIGTERM under load.

    make soak        (or: PYTHONPATH=functions:tests python bench/soak.py --requests 3000)

The server runs as its own process (`python -m llm_server`, as `make run` starts it) in front of
a Responses API server on loopback that answers at once. Reports throughput, latency, errors and
the server's memory after warm-up versus at the end; then holds `--idle` idle and half-sent
connections open (a slowloris) and times `/api/v1/health` meanwhile; then sends SIGTERM while
requests are in flight and checks that every one of them still completes. Loopback only; bounded
in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import statistics
import subprocess
import time

import httpx
import psutil

from helpers.fake_openai import FakeOpenAI, Step
from llm_server.local_server import raise_open_file_limit
from processes import free_port, llm_server

KEY = "sk-soak-" + "s" * 40
BODY = {"user_message": "soak", "openai_api_key": KEY, "max_tokens": 16}


def start_server(upstream: str, port: int, header_timeout: float) -> subprocess.Popen:
    """The server without retries: every request reaches the upstream once."""
    return llm_server(
        upstream,
        port,
        OPENAI_MAX_RETRIES="0",
        LOG_LEVEL="WARNING",
        MAX_CONCURRENT_REQUESTS="1000",
        MAX_CONCURRENT_PER_CLIENT="1000",
        HEADER_READ_TIMEOUT_SECONDS=str(header_timeout),
    )


async def load(url: str, requests: int, concurrency: int, limit_s: float) -> tuple[list, int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)
    deadline = time.monotonic() + limit_s

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty() and time.monotonic() < deadline:
            queue.get_nowait()
            started = time.perf_counter()
            try:
                response = await client.post("/api/v1/chat", json=BODY)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, errors


async def sigterm_under_load(url: str, server: subprocess.Popen, upstream: FakeOpenAI) -> dict:
    in_flight = 32
    upstream.enqueue(*[Step(delay=1.0)] * in_flight)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        calls = [
            asyncio.create_task(client.post("/api/v1/chat", json=BODY)) for _ in range(in_flight)
        ]
        await asyncio.sleep(0.4)
        server.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*calls, return_exceptions=True)
    ok = sum(1 for r in results if isinstance(r, httpx.Response) and r.status_code == 200)
    return {"in_flight": in_flight, "completed_ok": ok, "exit_code": server.wait(timeout=30)}


def slowloris(port: int, idle: int, header_timeout: float) -> dict:
    """Hold `idle` connections (every other one half-sent) and time `/health` meanwhile."""
    raise_open_file_limit()  # this process holds the other end of every connection
    held, refused = [], 0
    for index in range(idle):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:  # the server stopped accepting: the rest would be refused too
            refused = idle - index
            break
        if index % 2:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: soak\r\n")  # never finished
        held.append(sock)
    times = []
    for _ in range(10):
        started = time.perf_counter()
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code
        except httpx.HTTPError:
            status = 0
        times.append((time.perf_counter() - started, status))
    time.sleep(header_timeout + 1)
    closed = 0
    for sock in held:
        sock.setblocking(False)
        try:
            closed += sock.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        sock.close()
    return {
        "idle": idle,
        "refused": refused,
        "health_max_s": max(t for t, _ in times),
        "health_ok": sum(status == 200 for _, status in times),
        "closed_after_timeout": closed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=180)
    parser.add_argument("--idle", type=int, default=5000, help="slowloris connections to hold")
    parser.add_argument("--header-timeout", type=float, default=3.0)
    args = parser.parse_args()

    with FakeOpenAI() as upstream:
        port = free_port()
        server = start_server(upstream.url, port, args.header_timeout)
        url = f"http://127.0.0.1:{port}"
        process = psutil.Process(server.pid)
        warmup = max(100, args.requests // 10)
        asyncio.run(load(url, warmup, args.concurrency, args.max_seconds))
        rss_after_warmup = process.memory_info().rss
        started = time.perf_counter()
        latencies, errors = asyncio.run(
            load(url, args.requests, args.concurrency, args.max_seconds)
        )
        elapsed = time.perf_counter() - started
        rss_end = process.memory_info().rss
        loris = slowloris(port, args.idle, args.header_timeout)
        shutdown = asyncio.run(sigterm_under_load(url, server, upstream))

    quantiles = statistics.quantiles(latencies, n=100)
    mib = 1024 * 1024
    print(f"requests: {len(latencies)} at concurrency {args.concurrency}, errors: {errors}")
    print(f"throughput: {len(latencies) / elapsed:.0f} requests/s over {elapsed:.1f} s")
    print(f"latency: p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms")
    print(
        f"server RSS: {rss_after_warmup / mib:.1f} MiB after warm-up, {rss_end / mib:.1f} MiB "
        f"at the end ({(rss_end - rss_after_warmup) / mib:+.1f} MiB)"
    )
    print(
        f"slowloris: {loris['idle']} idle or half-sent connections opened "
        f"({loris['refused']} not accepted); /api/v1/health "
        f"{loris['health_ok']}/10 answered, slowest {loris['health_max_s'] * 1000:.0f} ms; "
        f"{loris['closed_after_timeout']} closed by the server after the header timeout"
    )
    print(
        f"SIGTERM with {shutdown['in_flight']} requests in flight: "
        f"{shutdown['completed_ok']} completed with 200, exit code {shutdown['exit_code']}"
    )


if __name__ == "__main__":
    main()
