"""Where a local server request's time goes: py-spy samples LLM Server under the throughput load.

    make bench-profile   (or: python bench/profile_server.py --seconds 10 --path /api/v1/chat)

The server (`python -m llm_server`, as in bench/throughput.py) answers 32 keep-alive connections
in front of the fast upstream while `py-spy record` samples it 250 times a second. Each sample
is given to the stages its stack passes through (inclusive: a log line's JSON encoding counts
in "logging" and in "JSON encoding"), then to the library its innermost frame is in (self time).
py-spy is installed in the dev venv by this target; it needs ptrace (root or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from processes import free_port, llm_server, stop
from throughput import CHAT, COMPLETIONS, http_request, load, upstream_process

# (stage, what a frame's "function (file)" text contains), in the order printed
STAGES = [
    ("HTTP parsing and writing (uvicorn, h11/httptools)", ("uvicorn/protocols", "/h11/")),
    ("ASGI middleware (ours)", ("llm_server/web/middleware", "llm_server/web/limits")),
    ("routing and dependencies (starlette, fastapi)", ("starlette/routing", "fastapi/routing")),
    ("identity", ("llm_server/web/identity",)),
    ("request validation (pydantic)", ("pydantic",)),
    ("the turn (runner, quotas, routing)", ("llm_server/core/",)),
    ("the provider call, client side (openai SDK, aiohttp/httpx)", ("/openai/", "aiohttp", "httpx")),
    ("usage ledger and pricing", ("llm_server/usage/",)),
    ("response serialisation", ("jsonable_encoder", "serialize_response", "render (")),
    ("JSON encoding (any)", ("json/encoder", "orjson", "dumps (")),
    ("logging (the request line)", ("/logging/", "llm_server/utils/log")),
    ("EMF metrics", ("powertools/metrics", "llm_server/utils/metrics")),
    ("asyncio event loop itself", ("asyncio/base_events", "asyncio/selector_events", "selectors")),
]
LIBRARIES = [
    "llm_server",
    "uvicorn",
    "h11",
    "httptools",
    "starlette",
    "fastapi",
    "pydantic",
    "openai",
    "aiohttp",
    "httpx",
    "httpcore",
    "anyio",
    "aws_lambda_powertools",
    "logging",
    "json",
    "asyncio",
    "selectors",
    "sqlite3",
    "threading",
]


def library_of(frame: str) -> str:
    """The library (or stdlib module) a collapsed frame `function (path:line)` is in."""
    path = frame[frame.rfind("(") + 1 :]
    for name in LIBRARIES:
        if f"/{name}/" in path or f"/{name}.py" in path or path.startswith(f"{name}/"):
            return name
    return "other"


def profile(port: int, request: bytes, seconds: float, rate: int) -> Path:
    """Load the server for `seconds` while py-spy records it; the collapsed-stacks file."""
    output = Path(tempfile.mkdtemp()) / "profile.txt"
    pid = _server_pid(port)
    spy = Path(sys.executable).with_name("py-spy")
    recorder = subprocess.Popen(
        [str(spy), "record", "-p", str(pid), "-r", str(rate), "-d", str(int(seconds)), "-f", "raw"]
        + ["-o", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = asyncio.run(load(port, request, 32, seconds + 1))
    recorder.wait(timeout=60)
    print(f"{run.rps:.0f} req/s under the profiler, {run.errors} errors")
    return output


def _server_pid(port: int) -> int:
    found = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    return int(found.stdout.split("pid=")[1].split(",")[0])


def report(stacks: Path) -> None:
    """Inclusive share per stage, then self share per library, of the busy samples."""
    by_stage: collections.Counter[str] = collections.Counter()
    by_library: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in stacks.read_text().splitlines():
        trace, _, count = line.rpartition(" ")
        frames = trace.split(";")
        if "select (selectors.py" in frames[-1] or "epoll" in frames[-1]:
            continue  # idle: the loop waiting for sockets
        samples = int(count)
        busy += samples
        by_library[library_of(frames[-1])] += samples
        for stage, needles in STAGES:
            if any(needle in frame for frame in frames for needle in needles):
                by_stage[stage] += samples
    print(f"\nbusy samples: {busy} (the event loop's thread; idle waits left out)")
    print("stage (inclusive: a sample counts in every stage its stack passes)      share")
    for stage, _ in STAGES:
        print(f"  {stage:<68} {100 * by_stage[stage] / busy:5.1f} %")
    print("library of the innermost frame (self time)                               share")
    for library, samples in by_library.most_common(12):
        print(f"  {library:<68} {100 * samples / busy:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=250)
    parser.add_argument("--path", default="/v1/chat/completions")
    args = parser.parse_args()
    upstream_port, port = free_port(), free_port()
    started = [upstream_process(upstream_port, 0.0)]
    try:
        base = f"http://127.0.0.1:{upstream_port}/v1"
        started.append(llm_server(base, port, MAX_CONCURRENT_REQUESTS="1000"))
        body = CHAT if args.path == "/api/v1/chat" else COMPLETIONS
        request = http_request(args.path, body)
        asyncio.run(load(port, request, 32, 2))  # warm-up
        report(profile(port, request, args.seconds, args.rate))
    finally:
        for process in reversed(started):
            stop(process)


if __name__ == "__main__":
    main()
