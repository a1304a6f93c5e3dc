"""Where a local server request's time goes: py-spy samples LLM Server under the throughput load.

    make bench-profile [COMPARE=<commit>]
    (or: python bench/profile_server.py --seconds 10 --path /api/v1/chat --compare REF)

The server (`python -m llm_server`, as in bench/throughput.py) answers 32 keep-alive connections
in front of the fast upstream while `py-spy record` samples it 100 times a second
(pausing it for each sample, so each stack is whole: the server runs about 5 % slower). Each sample
is given to one stage (see `stage_of`), then to the library its innermost frame is in.
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

from processes import checkout, free_port, llm_server, remove_checkout, stop
from throughput import CHAT, COMPLETIONS, http_request, load, upstream_process

# (stage, what a frame's "function (file)" text contains). A sample goes to the first of the
# OWNING stages its stack passes through, root first (a log line's JSON encoding is logging),
# else to the innermost frame's stage among the rest (the provider's socket write is the
# provider's; the loop's own polling is the loop's).
OWNING = [
    ("identity", ("llm_server/web/identity",)),
    ("request validation (pydantic)", ("pydantic",)),
    ("usage ledger and pricing", ("llm_server/usage/",)),
    ("response serialisation", ("serialize_response", "jsonable_encoder", "Response.render")),
    ("logging (the request line)", ("logging/", "llm_server/utils/log")),
    ("EMF metrics", ("powertools/metrics", "llm_server/utils/metrics")),
]
NESTED = [
    ("HTTP parsing and writing (uvicorn, httptools/h11)", ("uvicorn/", "h11/", "httptools")),
    ("ASGI middleware (ours)", ("llm_server/web/",)),
    ("routing and dependencies (starlette, fastapi)", ("starlette/", "fastapi/", "anyio/")),
    ("routes and the turn (ours: APIs, runner, quotas)", ("llm_server/",)),
    ("the provider call, client side (openai SDK, aiohttp)", ("openai/", "aiohttp", "httpx")),
    ("JSON encoding and decoding", ("json/", "orjson")),
    ("asyncio event loop itself", ("asyncio/", "selectors")),
]
STAGES = [name for name, _ in OWNING + NESTED]


def stage_of(frames: list[str]) -> str:
    """The stage a sample's stack (root first) is spent in."""
    for frame in frames:
        for stage, needles in OWNING:
            if any(needle in frame for needle in needles):
                return stage
    for frame in reversed(frames):
        for stage, needles in NESTED:
            if any(needle in frame for needle in needles):
                return stage
    return "other (stdlib, interpreter)"


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
    if path.startswith("<frozen") or "/" not in path:
        return "stdlib"
    for name in LIBRARIES:
        if f"/{name}/" in path or f"/{name}.py" in path or path.startswith(f"{name}/"):
            return name
    return "other"


def profile(port: int, request: bytes, seconds: float, rate: int) -> tuple[Path, float]:
    """Load the server for `seconds` while py-spy records it: the stacks file, µs a sample
    stands for in each answered request (the recorder's seconds over the requests answered)."""
    output = Path(tempfile.mkdtemp()) / "profile.txt"
    pid = _server_pid(port)
    spy = Path(sys.executable).with_name("py-spy")
    recorder = subprocess.Popen(
        [
            *(str(spy), "record", "-p", str(pid), "-r", str(rate), "-d", str(int(seconds))),
            *("-f", "raw", "-o", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = asyncio.run(load(port, request, 32, seconds + 1))
    recorder.wait(timeout=60)
    print(f"{run.rps:.0f} req/s under the profiler, {run.errors} errors")
    return output, 1e6 / rate / (run.rps * seconds)


def _server_pid(port: int) -> int:
    found = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    return int(found.stdout.split("pid=")[1].split(",")[0])


def report(stacks: Path, per_request: float) -> None:
    """Share of the busy samples per stage (and µs a request), then per library."""
    by_stage: collections.Counter[str] = collections.Counter()
    by_library: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in stacks.read_text().splitlines():
        trace, _, count = line.rpartition(" ")
        frames = trace.split(";")
        samples = int(count)
        busy += samples
        by_library[library_of(frames[-1])] += samples
        by_stage[stage_of(frames)] += samples
    print(f"\nbusy samples: {busy} (all threads; idle waits left out)")
    print(f"{'stage (each sample counted once)':<66} share  µs/request")
    for stage in [*STAGES, "other (stdlib, interpreter)"]:
        share = by_stage[stage] / busy
        print(f"  {stage:<64} {100 * share:5.1f} %  {by_stage[stage] * per_request:8.0f}")
    print(f"  {'in all':<64} {100:5.1f} %  {busy * per_request:8.0f}")
    print(f"{'library of the innermost frame (self time)':<72} share")
    for library, samples in by_library.most_common(12):
        print(f"  {library:<70} {100 * samples / busy:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--compare", help="profile the server as of this commit too, first")
    parser.add_argument("--stream", action="store_true", help="every request streamed")
    args = parser.parse_args()
    if args.compare:
        older = checkout(args.compare)
        try:
            print(f"== LLM Server @{args.compare}")
            profile_one(args, older)
        finally:
            remove_checkout(older)
        print("\n== LLM Server today")
    profile_one(args, None)


def profile_one(args: argparse.Namespace, code: Path | None) -> None:
    """Start the upstream and one server (`code`: another checkout's), profile it, report."""
    upstream_port, port = free_port(), free_port()
    started = [upstream_process(upstream_port, 0.0)]
    try:
        base = f"http://127.0.0.1:{upstream_port}/v1"
        started.append(llm_server(base, port, code, MAX_CONCURRENT_REQUESTS="1000"))
        body = CHAT if args.path == "/api/v1/chat" else COMPLETIONS
        request = http_request(args.path, {**body, "stream": True} if args.stream else body)
        asyncio.run(load(port, request, 32, 2))  # warm-up
        report(*profile(port, request, args.seconds, args.rate))
    finally:
        for process in reversed(started):
            stop(process)


if __name__ == "__main__":
    main()
