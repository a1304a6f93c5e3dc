"""What a Lambda user pays for: cold start, warm overhead, package size, memory.

    make bench-lambda    (runs `sam build` first; on the runtime's Python 3.13, with 3.11 beside it)

- Cold start: a fresh Python process imports the handler and answers its first API Gateway
  event (system info, a chat through the OpenAI path to a Responses API server on loopback, and
  a chat on a Bedrock model through boto3 to a Converse endpoint on loopback, its quota kept in
  DynamoDB on moto), each next to its yardstick in the same round: a bare FastAPI + Mangum
  handler, the same making one OpenAI SDK call, the same making one boto3 Converse call;
  medians of --runs. Each process has a stand-in Extensions API, as on Lambda: the time is to
  the handler's answer; what the after-answer extension writes next is not the caller's wait.
  The SnapStart cases run init and the before-snapshot hook, then time what a restore leaves
  on the request's path: the after-restore hook and the first chat.
- The same cases on another Python (--compare-python), with a layer built for it.
- Warm overhead: handler time minus the upstream call's own time, per invocation, in-process,
  next to the stack's own: FastAPI + Mangum under Powertools' decorators answering the same
  event through a pydantic-validated route, with nothing of ours; OpenAI and Bedrock side by
  side (Bedrock's includes its quota's admission, DynamoDB calls made before the answer as
  deployed; the ledger row and the settlement come after it, through the extension, which
  Lambda waits for before the next invocation: so does this bench).
- Size: the zipped function and dependency layer that `sam build` produced, biggest contributors.
- Memory: peak RSS of a process after its first chat invocation.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
# The code `sam build` produced, as Lambda runs it: make bench-lambda puts it on PYTHONPATH (the
# cold starts put it on their own path).
CODE = [BUILD / "DependenciesLayer" / "python", BUILD / "ChatFunction"]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "events")]

from stand_ins import ExtensionsAPIClient  # noqa: E402

KEY = "sk-bench-" + "b" * 40
NOVA = "us.amazon.nova-lite-v1:0"
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
# The same, plus one Converse call through boto3 (Lambda's runtime provides it), as its docs show.
BARE_BOTO3 = """
import boto3
from fastapi import FastAPI
from mangum import Mangum
app = FastAPI()
@app.post("/api/v1/chat")
def chat():
    client = boto3.client("bedrock-runtime")
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    response = client.converse(modelId="us.amazon.nova-lite-v1:0", messages=messages)
    return {"text": response["output"]["message"]["content"][0]["text"]}
handler = Mangum(app, lifespan="off")
"""
# The stack alone, warm: BARE's app and handler with a pydantic-validated chat route, under
# Powertools' two decorators as ours is.
STACK = """
from aws_lambda_powertools import Logger, Metrics
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel
class Chat(BaseModel):
    user_message: str
    openai_api_key: str | None = None
    model: str | None = None
app = FastAPI()
@app.post("/api/v1/chat")
async def chat(body: Chat):
    return {"response_text": "hi", "success": True}
logger, metrics = Logger(service="stack"), Metrics(namespace="stack", service="stack")
asgi = Mangum(app, lifespan="off")
handler = metrics.log_metrics(logger.inject_lambda_context(clear_state=True)(asgi))
"""
COLD = """
import json, os, sys
sys.path[:0] = {paths!r}
from helpers.runtime_api import ExtensionsAPI  # Lambda's side, not timed
lambda_api = ExtensionsAPI().__enter__()
os.environ["AWS_LAMBDA_RUNTIME_API"] = lambda_api.address
import time
started = time.perf_counter()
sys.path.append({runtime!r})  # boto3, which Lambda's runtime provides after the code's paths
{load}
init_seconds = time.perf_counter() - started
from invoke import LambdaContext
event = json.loads({event!r})
{restore}
context = LambdaContext()
lambda_api.invoke(context.aws_request_id)
response = handler(event, context)
answered = time.perf_counter() - started
assert response["statusCode"] == 200, response
assert not lambda_api.registered or lambda_api.finished(context.aws_request_id)
# this process's own peak (getrusage's ru_maxrss would start from the bench's, which spawned it)
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({{"seconds": answered, "init_seconds": init_seconds, "max_rss_kib": peak_kib}}))
"""
OURS = "from llm_server.lambda_handler import handler"
# SnapStart: init and the before-snapshot hook run when the version is published; a restore
# runs the after-restore hook, then the first request (timed from the restore).
SNAPSHOT = f"""{OURS}
from llm_server.lambda_handler import app
import llm_server.lambda_lifecycle as lc
lc.prime(app)"""
RESTORE = "started = time.perf_counter() - init_seconds; lc.renew(app)"


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


@dataclass(frozen=True)
class Upstreams:
    """Where the functions' calls go: the Responses API, bedrock-runtime, DynamoDB (moto)."""

    openai: str
    bedrock: str
    dynamodb: str
    table: str


@contextlib.contextmanager
def stand_ins() -> Iterator[tuple[Upstreams, ExtensionsAPIClient]]:
    """Everything the functions call, and Lambda's Extensions API, in a process of their own.

    The stand-ins run in `bench/stand_ins.py`'s process, as AWS, OpenAI and Lambda's own API are
    not in the function's; with BENCH_DYNAMODB_RTT_MS, DynamoDB's calls take that much longer
    each (a region's round trip). The bench drives the Extensions API through the client.
    """
    rtt = os.getenv("BENCH_DYNAMODB_RTT_MS", "0")
    serve = [sys.executable, str(ROOT / "bench" / "stand_ins.py"), "--dynamodb-rtt-ms", rtt]
    with subprocess.Popen(serve, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdin is not None
        addresses = json.loads(child.stdout.readline())
        lambda_api = ExtensionsAPIClient(addresses.pop("runtime_api"), child.stdin, child.stdout)
        try:
            yield Upstreams(**addresses), lambda_api
        finally:
            child.stdin.close()


def lambda_env(upstreams: Upstreams) -> dict[str, str]:
    """Lambda's variables and the template's settings (DynamoDB store, shared cache, Bedrock).

    The OpenAI requests (temperature 0.7, no session, the caller's key) touch no table; the
    Bedrock ones are on the server's account, so their quota is counted in the table.
    """
    from invoke import LAMBDA_ENV

    return {
        **os.environ,
        **LAMBDA_ENV,
        "AWS_ACCESS_KEY_ID": "testing",  # the stand-ins' (on Lambda: the function's role)
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LLM_PROVIDER": "openai",
        "OPENAI_BASE_URL": upstreams.openai,
        "BEDROCK_MODELS": NOVA,
        "FREE_MODE_REQUESTS_PER_MINUTE": "1000000",  # the quota is counted, never reached
        "FREE_MODE_TOKENS_PER_DAY": "1000000000",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": upstreams.bedrock,
        "AWS_ENDPOINT_URL_DYNAMODB": upstreams.dynamodb,
        "STORE": "dynamodb",
        "DYNAMODB_TABLE": upstreams.table,
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
    yardstick: str = "bare"  # the case its ratios are to, run in the same rounds
    restore: str = ""


@dataclass(frozen=True)
class Interpreter:
    """A Python, where it finds boto3, and the layer and function built for it."""

    python: str
    version: str  # e.g. 3.13.5
    runtime: str  # boto3's folder: Lambda's runtime provides it, after the code's paths
    code: list[Path]

    @classmethod
    def of(cls, python: str, code: list[Path] | None = None) -> Interpreter:
        """Ask `python` its version and boto3's place; build the code for it unless given."""
        probe = (
            "import boto3, json, pathlib, platform; print(json.dumps("
            "[platform.python_version(), str(pathlib.Path(boto3.__file__).parents[1])]))"
        )
        answer = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
        version, runtime = json.loads(answer.stdout)
        return cls(python, version, runtime, code or build_for(python, version))


def cold(case: ColdCase, env: dict[str, str], on: Interpreter) -> dict[str, float]:
    """Seconds (in all, and of init), peak RSS (KiB) of a fresh process answering one event.

    It runs on the code `sam build` produced for that Python (the layer as deployed, without a
    venv's site-packages: `python -S`), so only what Lambda would load is loaded.
    """
    script = COLD.format(
        paths=[*map(str, on.code), str(ROOT / "events"), str(ROOT / "tests")],
        runtime=on.runtime,
        load=case.load,
        event=case.event_json,
        restore=case.restore,
    )
    out = subprocess.run(
        [on.python, "-S", "-c", script],
        env={**env, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def cold_starts(
    cases: dict[str, ColdCase], env: dict[str, str], runs: int, on: Interpreter
) -> dict:
    """Every case once per round, `runs` rounds, so that noise hits all cases alike.

    Per case: the median seconds, the fastest run, the median of its per-round ratio to its
    yardstick (a ratio within one round cancels most of this machine's drift), in all and for
    the request alone, the median seconds of init and of the first request after it, and the
    peak RSS in KiB.
    """
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, case in cases.items():
            samples[name].append(cold(case, env, on))
    return {
        name: summary(runs_of, samples[cases[name].yardstick]) for name, runs_of in samples.items()
    }


def summary(runs_of: list[dict[str, float]], base: list[dict[str, float]]) -> dict[str, float]:
    """A case's medians, and its ratios to its yardstick's runs of the same rounds."""
    request = [s["seconds"] - s["init_seconds"] for s in runs_of]
    base_request = [b["seconds"] - b["init_seconds"] for b in base]
    return {
        "median": statistics.median(s["seconds"] for s in runs_of),
        "fastest": min(s["seconds"] for s in runs_of),
        "ratio": statistics.median(
            s["seconds"] / b["seconds"] for s, b in zip(runs_of, base, strict=True)
        ),
        "request_ratio": statistics.median(
            r / b for r, b in zip(request, base_request, strict=True)
        ),
        "init": statistics.median(s["init_seconds"] for s in runs_of),
        "request": statistics.median(request),
        "rss": max(s["max_rss_kib"] for s in runs_of),
    }


def print_cold_starts(cases: dict[str, ColdCase], results: dict, runs: int, version: str) -> None:
    """The cold-start table: each case's time, its ratios to the bare handler, init and request."""
    print(f"cold start on Python {version}, {runs} fresh processes each, medians:")
    header = f"{'in all':>9} {'fastest':>9} {'init':>9} {'request':>9} {'x yardstick':>12}"
    print(f"  {'':42} {header} {'request x':>9}")
    for name, case in cases.items():
        r = {key: value * 1000 for key, value in results[name].items() if "ratio" not in key}
        yardstick = f"{results[name]['ratio']:5.2f}x {case.yardstick}"
        print(
            f"  {case.label:42} {r['median']:6.0f} ms {r['fastest']:6.0f} ms"
            f" {r['init']:6.0f} ms {r['request']:6.1f} ms  {yardstick:<17}"
            f" {results[name]['request_ratio']:5.2f}x"
        )
    print(f"peak RSS after a cold chat invocation: {results['chat']['rss'] / 1024:.0f} MiB")


def build_for(python: str, version: str) -> list[Path]:
    """The layer and function for another Python, built as the layer's Makefile builds them.

    The layer is kept while its requirements stay the same; the function is copied from
    today's build every run (its bytecode is unchecked-hash: a copy kept from an earlier run
    would run that run's code).
    """
    version = version.rsplit(".", 1)[0]  # 3.11.7 -> 3.11
    out = ROOT / ".aws-sam" / f"bench-python{version}"
    layer, function = out / "python", out / "function"
    folder = ROOT / "layers" / "dependencies"
    requirements = [folder / "requirements.txt", folder / "no-deps.txt"]
    stamp = hashlib.sha256(b"".join(path.read_bytes() for path in requirements)).hexdigest()
    built = out / ".built"
    if not built.exists() or built.read_text() != stamp:
        shutil.rmtree(out, ignore_errors=True)
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        pip += ["--target", str(layer), "--platform", "manylinux2014_x86_64"]
        pip += ["--implementation", "cp", "--python-version", version]
        pip += ["--only-binary=:all:", "--no-compile"]
        subprocess.run([*pip, "-r", str(requirements[0])], check=True)
        subprocess.run([*pip, "--no-deps", "-r", str(requirements[1])], check=True)
        compile_for(python, layer)
        built.write_text(stamp)
    shutil.rmtree(function, ignore_errors=True)
    shutil.copytree(BUILD / "ChatFunction", function, ignore=shutil.ignore_patterns("__pycache__"))
    compile_for(python, function)
    return [layer, function]


def compile_for(python: str, tree: Path) -> None:
    """Bytecode for `python` in `tree`, unchecked as `sam build`'s (functions/bytecode.sh)."""
    compile_all = [python, "-m", "compileall", "-q", "-j", "0"]
    compile_all += ["--invalidation-mode", "unchecked-hash", str(tree)]
    subprocess.run(compile_all, check=True, stdout=subprocess.DEVNULL)


def warm_overhead(
    upstreams: Upstreams,
    invocations: int,
    lambda_api: ExtensionsAPIClient,
    between: Callable[[], None] = lambda: None,
    chats: dict[str, dict] | None = None,
) -> dict[str, list[float]]:
    """Per invocation, by path: the handler's time minus the time of the call to the upstream.

    Lambda's side is played as Lambda plays it: the extension gets each INVOKE event, and the
    next invocation waits until it has asked for its next one (after the ledger's writes).
    `between` runs before each invocation, untimed; `chats`: the paths (all by default).
    """
    os.environ.update(lambda_env(upstreams))
    os.environ["AWS_LAMBDA_RUNTIME_API"] = lambda_api.address
    from invoke import LambdaContext

    from llm_server.core.free_mode import FreeModeQuota
    from llm_server.lambda_handler import handler
    from llm_server.providers.bedrock.provider import BedrockProvider
    from llm_server.providers.openai import OpenAIResponsesProvider
    from llm_server.utils.log import logger

    logger.setLevel("INFO")  # as deployed: one JSON line per request
    for std_handler in logging.getLogger(logger.name).handlers:
        std_handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    # the whole upstream call counts as upstream; the free-mode quota's store calls apart
    upstream_seconds, quota_seconds = _UPSTREAM_SECONDS, _QUOTA_SECONDS
    if not hasattr(FreeModeQuota.admit, "timed"):  # once per process
        OpenAIResponsesProvider._create = timed_into(
            OpenAIResponsesProvider._create, upstream_seconds
        )
        BedrockProvider._retried = timed_into(BedrockProvider._retried, upstream_seconds)
        FreeModeQuota.admit = timed_into(FreeModeQuota.admit, quota_seconds)
    overheads: dict[str, list[float]] = {}
    with contextlib.redirect_stdout(io.StringIO()) as emf:  # EMF metrics, one blob a request
        for path, body in (chats or CHATS).items():
            chat = json.loads(event("/api/v1/chat", body))
            overheads[path] = []
            for index in range(invocations + 20):  # 20 to warm up
                emf.seek(0)
                emf.truncate()
                quota_seconds.clear()
                context = LambdaContext()
                between()
                lambda_api.invoke(context.aws_request_id)
                started = time.perf_counter()
                response = handler(chat, context)
                answered = time.perf_counter()
                assert response["statusCode"] == 200, response
                assert lambda_api.finished(context.aws_request_id)
                if index >= 20:
                    spent = answered - started - upstream_seconds[-1]
                    overheads[path].append(spent * 1000)
                    if quota_seconds:  # the server pays: its quota's admission, apart
                        less = overheads.setdefault(f"{path}, less its admission", [])
                        less.append((spent - sum(quota_seconds)) * 1000)
    return overheads


# What warm_overhead's timing wrappers (put on once per process) add the calls' seconds to.
_UPSTREAM_SECONDS: list[float] = []
_QUOTA_SECONDS: list[float] = []
_EVICTION: list[bytearray] = []  # empty_caches' two buffers, made on first use


def empty_caches() -> None:
    """Evict the handler's code and data from the CPU's caches: copy 64 MiB (more than L3).

    What an environment whose invocations are spaced out sees: between two of them the host
    ran other work, so each starts with cold caches; back to back, much of it is still there.
    """
    if not _EVICTION:
        _EVICTION.extend(bytearray(64 * 1024 * 1024) for _ in range(2))
    _EVICTION[1][:] = _EVICTION[0]


def warm_floor(
    invocations: int, lambda_api: ExtensionsAPIClient, between: Callable[[], None] = lambda: None
) -> list[float]:
    """Per invocation, ms: the stack the product is built on, with nothing of ours in it.

    FastAPI behind Mangum under Powertools' two decorators, answering the same chat event by a
    route whose body a pydantic model validates, and no upstream: what any function on this
    stack pays before it does anything. Between invocations the bench makes the same round
    trip to the stand-ins' process as for ours (Lambda's side), so caches are as cold.
    """
    from invoke import LambdaContext

    stack: dict = {}
    exec(STACK, stack)  # its own module, as the yardsticks of the cold starts
    handler = stack["handler"]
    chat_event = json.loads(event("/api/v1/chat", CHATS["OpenAI (the caller's key)"]))
    spent = []
    for index in range(invocations + 20):
        context = LambdaContext()
        assert lambda_api.registered  # Lambda's side, as between our invocations
        between()
        started = time.perf_counter()
        answer = handler(chat_event, context)
        assert answer["statusCode"] == 200, answer
        if index >= 20:
            spent.append((time.perf_counter() - started) * 1000)
    return spent


def timed_into(call, seconds: list[float]):
    """`call` (a coroutine method), adding the time each call takes to `seconds`."""

    async def timed_call(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return await call(self, *args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    timed_call.timed = True
    return timed_call


CHATS = {
    "OpenAI (the caller's key)": {"user_message": "hi", "openai_api_key": KEY},
    "Bedrock (the server's account)": {"user_message": "hi", "model": NOVA},
}


def zipped_size(folder: Path) -> tuple[int, dict[str, int]]:
    buffer = io.BytesIO()
    parts: dict[str, int] = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                before = buffer.tell()
                archive.write(path, path.relative_to(folder))
                top = path.relative_to(folder).parts[:1]
                parts["/".join(top)] = parts.get("/".join(top), 0) + buffer.tell() - before
    return buffer.tell(), parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--invocations", type=int, default=1000)
    parser.add_argument("--compare-python", help="another Python to run the cold starts on")
    args = parser.parse_args()
    if not BUILD.exists():
        raise SystemExit("no .aws-sam/build: run `sam build` first (make bench-lambda does)")
    interpreters = [Interpreter.of(sys.executable, CODE)]
    if args.compare_python:
        interpreters.append(Interpreter.of(args.compare_python))

    with stand_ins() as (upstreams, lambda_api):
        env = lambda_env(upstreams)
        info = event("/api/v1/system/info")
        chat = event("/api/v1/chat", CHATS["OpenAI (the caller's key)"])
        on_bedrock = event("/api/v1/chat", CHATS["Bedrock (the server's account)"])
        cases = {
            "bare": ColdCase("bare FastAPI+Mangum", f"exec({BARE!r})", info),
            "info": ColdCase("GET /api/v1/system/info", OURS, info),
            "bare_sdk": ColdCase("bare + one OpenAI SDK call", f"exec({BARE_SDK!r})", chat),
            "chat": ColdCase("POST /api/v1/chat (OpenAI)", OURS, chat, "bare_sdk"),
            "snapstart": ColdCase(
                "the same, restored by SnapStart", SNAPSHOT, chat, "bare", RESTORE
            ),
            "bare_boto3": ColdCase(
                "bare + one boto3 Converse call", f"exec({BARE_BOTO3!r})", on_bedrock
            ),
            "bedrock": ColdCase("POST /api/v1/chat on Bedrock", OURS, on_bedrock, "bare_boto3"),
            "bedrock_snapstart": ColdCase(
                "the same, restored by SnapStart", SNAPSHOT, on_bedrock, "bare", RESTORE
            ),
        }
        for interpreter in interpreters:
            results = cold_starts(cases, env, args.runs, interpreter)
            print_cold_starts(cases, results, args.runs, interpreter.version)

        overheads = warm_overhead(upstreams, args.invocations, lambda_api)
        floor = warm_floor(args.invocations, lambda_api)
        print(f"warm overhead (handler minus upstream), {args.invocations} invocations each:")
        print_warm("the stack alone: FastAPI, Mangum, Powertools, a model", floor)
        for path, figures in overheads.items():
            print_warm(path, figures, floor)
        openai = {path: CHATS[path] for path in list(CHATS)[:1]}
        cold = warm_overhead(upstreams, args.invocations, lambda_api, empty_caches, openai)
        cold_floor = warm_floor(args.invocations, lambda_api, empty_caches)
        print("the same, the CPU's caches emptied before each invocation (spaced-out traffic):")
        print_warm("the stack alone: FastAPI, Mangum, Powertools, a model", cold_floor)
        for path, figures in cold.items():
            print_warm(path, figures, cold_floor)
    for interpreter in interpreters:
        print_sizes(interpreter)


def print_warm(label: str, figures: list[float], floor: list[float] | None = None) -> None:
    """p50 and p99 of `figures`, ms, and what the p50 adds to the stack's alone."""
    q = statistics.quantiles(figures, n=100)
    line = f"  {label:56} p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms"
    if floor is not None:
        line += f"  (+{q[49] - statistics.median(floor):.2f} over the stack's p50)"
    print(line)


def print_sizes(interpreter: Interpreter) -> None:
    """The zipped layer and function built for `interpreter`; the layer's biggest packages."""
    mib = 1024 * 1024
    layer, function = (zipped_size(folder) for folder in interpreter.code)
    print(f"built for Python {interpreter.version}:")
    print(f"  layer zipped: {layer[0] / mib:.2f} MiB")
    for package, size in sorted(layer[1].items(), key=lambda kv: -kv[1])[:6]:
        print(f"    {package:<40} {size / mib:6.2f} MiB")
    print(f"  function zipped: {function[0] / mib:.2f} MiB")
    print(f"  function + layer zipped: {(layer[0] + function[0]) / mib:.2f} MiB")


if __name__ == "__main__":
    main()
