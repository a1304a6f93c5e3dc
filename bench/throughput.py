"""Local server throughput: requests/s and p50/p99 at 32 and 128 connections, next to peers.

    make bench-throughput   (or: python bench/throughput.py --seconds 10)

One fast OpenAI stand-in (`fast_upstream.py`, answers at once) behind three front ends, each
in its own process with one worker: LLM Server (`python -m llm_server`, as `make run` starts it,
on the OpenAI provider), LiteLLM's proxy (installed in its own venv, `.bench/litellm`, from
`bench/requirements-litellm.txt`), and nothing (the upstream alone: the limit). Every front end
gets the same `POST /v1/chat/completions`; LLM Server's own `POST /api/v1/chat` is measured too,
and Anthropic's `POST /v1/messages` beside `/v1/chat/completions` on the same terms (the server's
key, the tenant's `x-api-key`, its quota admitted and settled): the third adapter's cost.
`--compare REF` adds LLM Server as of commit REF beside today's, in the same rounds.
The load comes from keep-alive connections that each send the next request as soon as the last
answer is in; a warm-up run precedes each measured one. Non-200 answers count as errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from processes import ROOT, code_variants, free_port, launch, llm_server, stop

KEY = "sk-bench-" + "t" * 40
TENANTS = ("tenant-completions", "tenant-messages")  # one each: each its own quota window
MESSAGES = [
    {"role": "system", "content": "당신은 도움이 되는 AI 어시스턴트입니다."},
    {"role": "user", "content": "What is the capital of France?"},
]
COMPLETIONS = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 16}
MESSAGES_API = {
    "model": "gpt-4o-mini",
    "system": MESSAGES[0]["content"],
    "messages": MESSAGES[1:],
    "max_tokens": 16,
}
CHAT = {
    "user_message": MESSAGES[1]["content"],
    "system_message": MESSAGES[0]["content"],
    "max_tokens": 16,
    "openai_api_key": KEY,
}
OURS = "LLM Server /v1/chat/completions"
PEER = "LiteLLM proxy /v1/chat/completions"
LITELLM_VENV = ROOT / ".bench" / "litellm"
LITELLM_CONFIG = """
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream}
      api_key: {key}
litellm_settings:
  telemetry: false
"""


@dataclass
class Run:
    """What one load run saw."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rps(self) -> float:
        """Answers per second."""
        return len(self.latencies) / self.seconds

    def percentile(self, p: int) -> float:
        """Latency percentile `p` in milliseconds."""
        return statistics.quantiles(self.latencies, n=100)[p - 1] * 1000


@dataclass
class Figures:
    """Medians over the rounds of one front end at one concurrency."""

    rps: float
    p50: float
    p99: float
    errors: int

    @classmethod
    def of(cls, runs: list[Run]) -> Figures:
        """Median requests/s, p50 and p99 of `runs`; errors summed."""
        return cls(
            statistics.median(r.rps for r in runs),
            statistics.median(r.percentile(50) for r in runs),
            statistics.median(r.percentile(99) for r in runs),
            sum(r.errors for r in runs),
        )


def http_request(
    path: str, body: dict, credential: str = "authorization: Bearer", key: str = KEY
) -> bytes:
    """One keep-alive HTTP/1.1 POST with a JSON body and the caller's key.

    `credential`: the header the key travels in (`x-api-key:` for a tenant on the server's key).
    """
    payload = json.dumps(body, ensure_ascii=False).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"{credential} {key}\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def read_status(reader: asyncio.StreamReader) -> int:
    """Read one whole response (Content-Length or chunked); return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    headers = head.lower()
    if b"transfer-encoding: chunked" in headers:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        start = headers.index(b"content-length:") + len(b"content-length:")
        await reader.readexactly(int(headers[start : headers.index(b"\r\n", start)]))
    return int(head[9:12])


async def load(port: int, request: bytes, connections: int, seconds: float) -> Run:
    """`connections` clients, each sending its next request when its last answer is in."""
    run = Run(seconds)
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (started := time.perf_counter()) < stop_at:
                writer.write(request)
                status = await read_status(reader)
                run.latencies.append(time.perf_counter() - started)
                run.errors += status != 200
        except (OSError, asyncio.IncompleteReadError, ValueError):
            run.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return run


def litellm_proxy(upstream: str, port: int) -> subprocess.Popen:
    """LiteLLM's proxy, one worker, installed on first use in its own venv."""
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        print("installing LiteLLM's proxy in .bench/litellm (first time only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        requirements = ROOT / "bench" / "requirements-litellm.txt"
        pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "-r", str(requirements)]
        subprocess.run(pip, check=True)
    config = Path(tempfile.mkdtemp()) / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(upstream=upstream, key=KEY))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    return launch(argv, f"http://127.0.0.1:{port}/health/liveliness", env, timeout=180)


def upstream_process(port: int, delay_ms: float) -> subprocess.Popen:
    """The fast OpenAI stand-in."""
    argv = [sys.executable, str(ROOT / "bench" / "fast_upstream.py"), "--port", str(port)]
    process = subprocess.Popen([*argv, "--delay-ms", str(delay_ms)], stdout=subprocess.PIPE)
    assert process.stdout and process.stdout.readline().strip() == b"ready"
    return process


def rounds(targets: dict[str, tuple[int, bytes]], args: argparse.Namespace) -> dict:
    """Every front end at every concurrency, interleaved, `--rounds` times (noise evens out)."""
    runs: dict[tuple[str, int], list[Run]] = {}
    for _ in range(args.rounds):
        for name, (port, request) in targets.items():
            for connections in args.connections:
                asyncio.run(load(port, request, connections, args.warmup))
                run = asyncio.run(load(port, request, connections, args.seconds))
                runs.setdefault((name, connections), []).append(run)
    return {key: Figures.of(value) for key, value in runs.items()}


def report(figures: dict[tuple[str, int], Figures], args: argparse.Namespace) -> None:
    """The table, then LLM Server against LiteLLM at each concurrency."""
    print(
        f"medians of {args.rounds} rounds of {args.seconds:.0f} s, upstream delay "
        f"{args.delay_ms:.0f} ms{', streamed' if args.stream else ''}"
    )
    print(f"  {'front end':<48} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} errors")
    for (name, connections), f in figures.items():
        print(f"  {name:<48} {connections:>5} {f.rps:8.0f} {f.p50:8.1f} {f.p99:8.1f} {f.errors}")
    for connections in args.connections:
        ours = figures[(OURS, connections)]
        peer = figures.get((PEER, connections))
        if peer:
            print(
                f"  at {connections} connections: {ours.rps / peer.rps:.2f}x LiteLLM's "
                f"throughput, p99 {ours.p99:.0f} ms vs {peer.p99:.0f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--delay-ms", type=float, default=0.0, help="upstream latency")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument(
        "--stream", action="store_true", help="every request streamed (server-sent events)"
    )
    parser.add_argument("--compare", help="a commit whose LLM Server runs beside today's")
    args = parser.parse_args()

    upstream_port = free_port()
    base = f"http://127.0.0.1:{upstream_port}/v1"
    with code_variants(args.compare) as variants:  # the commit's worktree, removed after
        older = variants[0][1]  # None without --compare
        started: list[subprocess.Popen] = []
        try:
            started.append(upstream_process(upstream_port, args.delay_ms))
            ours = free_port()
            # The admission limit's default (10) is sized for the local model; a proxy needs more.
            # The server's key and its tenant, with quotas no run reaches, for /v1/messages.
            server_paid = {
                "MAX_CONCURRENT_REQUESTS": "1000",
                "OPENAI_API_KEY": KEY,
                "CLIENT_API_KEYS": f"{TENANTS[0]},{TENANTS[1]}",
                "OPENAI_COMPAT_FREE_MODE": "true",
                "FREE_MODE_REQUESTS_PER_MINUTE": "100000000",
                "FREE_MODE_TOKENS_PER_DAY": "1000000000000",
            }
            started.append(llm_server(base, ours, **server_paid))
            stream = {"stream": True} if args.stream else {}
            completions = http_request("/v1/chat/completions", {**COMPLETIONS, **stream})
            chat = http_request("/api/v1/chat", {**CHAT, **stream})
            tenant = "x-api-key:"
            targets = {
                "upstream alone": (upstream_port, completions),
                OURS: (ours, completions),
                "LLM Server /api/v1/chat": (ours, chat),
                "LLM Server /v1/chat/completions, server's key": (
                    ours,
                    http_request(
                        "/v1/chat/completions", {**COMPLETIONS, **stream}, tenant, TENANTS[0]
                    ),
                ),
                "LLM Server /v1/messages, server's key": (
                    ours,
                    http_request("/v1/messages", {**MESSAGES_API, **stream}, tenant, TENANTS[1]),
                ),
            }
            if older is not None:
                then = free_port()
                started.append(llm_server(base, then, older, MAX_CONCURRENT_REQUESTS="1000"))
                targets[f"{OURS} @{args.compare}"] = (then, completions)
                targets[f"LLM Server /api/v1/chat @{args.compare}"] = (then, chat)
            if not args.skip_litellm:
                peer = free_port()
                started.append(litellm_proxy(base, peer))
                targets[PEER] = (peer, completions)
            report(rounds(targets, args), args)
        finally:
            for process in reversed(started):
                stop(process)


if __name__ == "__main__":
    main()
