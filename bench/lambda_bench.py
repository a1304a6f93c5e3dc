"""What a Lambda user pays for: cold start, warm overhead, package size, memory.

    make bench-lambda    (runs `sam build` first; or: python bench/lambda_bench.py)

- Cold start: a fresh Python process imports the handler and answers its first API Gateway
  event (system info, and a chat through the OpenAI path to a Responses API server on loopback),
  next to a bare FastAPI + Mangum handler, in the same run; medians of --runs.
- Warm overhead: handler time minus the upstream call's own time, per invocation, in-process.
- Size: the zipped function and dependency layer that `sam build` produced, biggest contributors.
- Memory: peak RSS of a process after its first chat invocation.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "tests"), str(ROOT / "events")]

from helpers.fake_openai import FakeOpenAI  # noqa: E402

KEY = "sk-bench-" + "b" * 40
BARE = """
from fastapi import FastAPI
from mangum import Mangum
app = FastAPI()
@app.get("/api/v1/system/info")
def info():
    return {"ok": True}
handler = Mangum(app, lifespan="off")
"""
# The same, plus one `responses.create` through the OpenAI SDK as its README shows it: what any
# app that answers a chat through the SDK pays before its own code (OPENAI_BASE_URL is set).
BARE_SDK = """
from fastapi import FastAPI
from mangum import Mangum
from openai import AsyncOpenAI
app = FastAPI()
@app.post("/api/v1/chat")
async def chat():
    client = AsyncOpenAI(api_key="sk-bench")
    messages = [{"role": "user", "content": "hi"}]
    response = await client.responses.create(model="gpt-4o-mini", input=messages)
    return {"text": response.output_text}
handler = Mangum(app, lifespan="off")
"""
COLD = """
import json, sys, time
started = time.perf_counter()
sys.path[:0] = {paths!r}
{load}
init_seconds = time.perf_counter() - started
from invoke import LambdaContext
event = json.loads({event!r})
response = handler(event, LambdaContext())
assert response["statusCode"] == 200, response
import resource
print(json.dumps({{"seconds": time.perf_counter() - started, "init_seconds": init_seconds,
                  "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def event(path: str, body: dict | None = None) -> str:
    """A REST API (payload 1.0) event as the deployed gateway sends it, with an API key id."""
    base = json.loads((ROOT / "events" / "system-info.json").read_text())
    base["path"] = base["resource"] = base["requestContext"]["resourcePath"] = path
    base["requestContext"]["path"] = f"/dev{path}"
    if body is not None:
        base["httpMethod"] = base["requestContext"]["httpMethod"] = "POST"
        base["headers"]["Content-Type"] = "application/json"
        base["multiValueHeaders"]["Content-Type"] = ["application/json"]
        base["body"] = json.dumps(body)
    return json.dumps(base)


def lambda_env(upstream: str) -> dict[str, str]:
    """Lambda's variables and the template's settings (DynamoDB store, shared cache).

    The benchmark's requests (temperature 0.7, no session, the caller's key) touch no table.
    """
    from invoke import LAMBDA_ENV

    return {
        **os.environ,
        **LAMBDA_ENV,
        "LLM_PROVIDER": "openai",
        "OPENAI_BASE_URL": upstream,
        "STORE": "dynamodb",
        "DYNAMODB_TABLE": "llm-server-bench",
        "CACHE_SHARED": "true",
        "LOG_LEVEL": "WARNING",
        "IDENTITY_SOURCE": "gateway",
        "ALLOW_ANONYMOUS": "false",
        "OPENAI_HTTP_CLIENT": "httpx",
    }


@dataclass(frozen=True)
class ColdCase:
    """One kind of cold start: what the process loads, the event it answers, its environment."""

    label: str
    load: str
    event_json: str
    env: dict[str, str] = field(default_factory=dict)


def cold(case: ColdCase, env: dict[str, str]) -> dict[str, float]:
    """Seconds (in all, and of init), peak RSS (KiB) of a fresh process answering one event.

    It runs on what `sam build` put in `.aws-sam/build` (the layer as deployed, without the
    venv's site-packages: `python -S`), so only what Lambda would load is loaded.
    """
    paths = [str(BUILD / "DependenciesLayer" / "python"), str(BUILD / "ChatFunction")]
    script = COLD.format(
        paths=[*paths, str(ROOT / "events")], load=case.load, event=case.event_json
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", script],
        env={**env, **case.env, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def cold_starts(cases: dict[str, ColdCase], env: dict[str, str], runs: int) -> dict:
    """Every case once per round, `runs` rounds, so that noise hits all cases alike.

    Per case: the median seconds, the fastest run, the median of its per-round ratio to the
    first case (a ratio within one round cancels most of this machine's drift), the median
    seconds of init and of the first request after it, and the peak RSS in KiB.
    """
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, case in cases.items():
            samples[name].append(cold(case, env))
    base = [s["seconds"] for s in next(iter(samples.values()))]
    return {
        name: {
            "median": statistics.median(s["seconds"] for s in runs_of),
            "fastest": min(s["seconds"] for s in runs_of),
            "ratio": statistics.median(
                s["seconds"] / b for s, b in zip(runs_of, base, strict=True)
            ),
            "init": statistics.median(s["init_seconds"] for s in runs_of),
            "request": statistics.median(s["seconds"] - s["init_seconds"] for s in runs_of),
            "rss": max(s["max_rss_kib"] for s in runs_of),
        }
        for name, runs_of in samples.items()
    }


def print_cold_starts(cases: dict[str, ColdCase], results: dict, runs: int) -> None:
    """The cold-start table: each case's time, its ratio to the bare handler, init and request."""
    print(f"cold start, {runs} fresh processes each (import + first event), medians:")
    header = f"{'in all':>9} {'fastest':>9} {'x bare':>7} {'init':>9} {'request':>9}"
    print(f"  {'':42} {header}")
    for name, case in cases.items():
        r = {key: value * 1000 for key, value in results[name].items() if key != "ratio"}
        print(
            f"  {case.label:42} {r['median']:6.0f} ms {r['fastest']:6.0f} ms"
            f" {results[name]['ratio']:6.2f}x {r['init']:6.0f} ms {r['request']:6.0f} ms"
        )
    print(f"peak RSS after a cold chat invocation: {results['chat']['rss'] / 1024:.0f} MiB")


def warm_overhead(upstream: str, invocations: int) -> list[float]:
    """Per invocation: the handler's time minus the time of the SDK call to the upstream."""
    os.environ.update(lambda_env(upstream))
    from invoke import LambdaContext

    from llm_server.lambda_handler import handler
    from llm_server.providers.openai import OpenAIResponsesProvider
    from llm_server.utils.log import logger

    logger.setLevel("INFO")  # as deployed: one JSON line per request
    for std_handler in logging.getLogger(logger.name).handlers:
        std_handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    upstream_seconds: list[float] = []
    create = OpenAIResponsesProvider._create

    async def timed_create(self, *args, **kwargs):  # the whole SDK call counts as upstream
        started = time.perf_counter()
        try:
            return await create(self, *args, **kwargs)
        finally:
            upstream_seconds.append(time.perf_counter() - started)

    OpenAIResponsesProvider._create = timed_create
    chat = json.loads(event("/api/v1/chat", {"user_message": "hi", "openai_api_key": KEY}))
    overheads = []
    with contextlib.redirect_stdout(io.StringIO()) as emf:  # EMF metrics, one blob a request
        for index in range(invocations + 20):  # 20 to warm up
            emf.seek(0)
            emf.truncate()
            started = time.perf_counter()
            handler(chat, LambdaContext())
            if index >= 20:
                overheads.append((time.perf_counter() - started - upstream_seconds[-1]) * 1000)
    return overheads


def zipped_size(folder: Path) -> tuple[int, dict[str, int]]:
    buffer = io.BytesIO()
    parts: dict[str, int] = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                before = buffer.tell()
                archive.write(path, path.relative_to(folder))
                top = path.relative_to(folder).parts[:2]
                parts["/".join(top)] = parts.get("/".join(top), 0) + buffer.tell() - before
    return buffer.tell(), parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--invocations", type=int, default=1000)
    args = parser.parse_args()
    if not BUILD.exists():
        raise SystemExit("no .aws-sam/build: run `sam build` first (make bench-lambda does)")
    mib = 1024 * 1024

    with FakeOpenAI() as upstream:
        env = lambda_env(upstream.url)
        info = event("/api/v1/system/info")
        chat = event("/api/v1/chat", {"user_message": "hi", "openai_api_key": KEY})
        ours = "from llm_server.lambda_handler import handler"
        ahead = {"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}
        cases = {
            "bare": ColdCase("bare FastAPI+Mangum", f"exec({BARE!r})", info),
            "info": ColdCase("GET /api/v1/system/info", ours, info),
            "bare_sdk": ColdCase("bare + one OpenAI SDK call", f"exec({BARE_SDK!r})", chat),
            "chat": ColdCase("POST /api/v1/chat via the SDK", ours, chat),
            "primed": ColdCase("the same, init ahead of traffic", ours, chat, ahead),
        }
        print_cold_starts(cases, cold_starts(cases, env, args.runs), args.runs)

        overheads = warm_overhead(upstream.url, args.invocations)
        q = statistics.quantiles(overheads, n=100)
        print(f"warm overhead (handler minus upstream), {args.invocations} invocations:")
        print(f"  p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms")

    total = 0
    for name in ("ChatFunction", "DependenciesLayer"):
        size, parts = zipped_size(BUILD / name)
        total += size
        print(f"{name} zipped: {size / mib:.2f} MiB")
        biggest = sorted(parts.items(), key=lambda kv: -kv[1])[:6]
        for part, part_size in biggest:
            print(f"    {part:<40} {part_size / mib:6.2f} MiB")
    print(f"function + layer zipped: {total / mib:.2f} MiB")


if __name__ == "__main__":
    main()
