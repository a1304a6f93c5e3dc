"""Where a warm Lambda invocation's time goes, by stage, today and at another commit.

    make bench-lambda-stages [COMPARE=<commit>]

The real handler, in-process, as `bench/lambda_bench.py` runs it (the template's settings,
DynamoDB on moto, the Responses API and Converse stand-ins on loopback in a process of their
own, a stand-in Extensions API), answers `--invocations` chats per path after a warm-up; each
stage is timed by wrapping the function that starts it, and a stage's figure is its median less
the stages inside it:

- Powertools: `log_metrics` and `inject_lambda_context` around the handler, and the
  after-answer handover (the handler less Mangum's call);
- Mangum, FastAPI and the route: event to ASGI, middleware (log line, EMF), identity,
  validation, routing, the route, serialisation (Mangum's call less the runner's);
- the turn's own: routing, admission, pricing, the ledger and settlement, or their handover
  (the runner less the provider's call);
- the quota's admission (a server-paid turn: DynamoDB calls before the answer);
- the provider's client side beyond the HTTP call (the provider's call less `_create` or
  `_retried`, the HTTP exchange with the stand-in, counted as upstream).

The OpenAI chat is then measured once more with the ledger's row not written (handed over to
the extension as ever, then dropped): what the one DynamoDB write made between two invocations,
after the answer, costs the next one (botocore's code and data evict the handler's from the
CPU's caches: no collection, page fault or thread is running meanwhile).

With COMPARE, the commit's `functions/` (a git worktree made for the run) runs on the same layer
in the same run: each tree in a child process on the Lambda Python, taken in turns for
`--rounds` rounds (this machine drifts by a quarter from one minute to the next), and each
stage's figure is the median of its rounds' medians.
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
from pathlib import Path

from processes import code_variants

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "DependenciesLayer" / "python"

STAGES = (
    ("handler", "whole handler"),
    ("powertools", "Powertools decorators, after-answer handover"),
    ("app", "Mangum, middleware, FastAPI, the route"),
    ("turn", "the turn's own (runner, usage, quota)"),
    ("admission", "  of which the quota's admission"),
    ("provider", "provider, client side"),
    ("upstream", "upstream HTTP exchange (not overhead)"),
    ("overhead", "overhead (handler less upstream)"),
)


def child(invocations: int) -> None:
    """Measure on the `llm_server` on sys.path; print the stages' medians (ms) per path."""
    sys.path[:0] = [str(ROOT / "bench")]
    import lambda_bench as lb

    with lb.stand_ins() as (upstreams, lambda_api):
        os.environ.update(lb.lambda_env(upstreams))
        os.environ["AWS_LAMBDA_RUNTIME_API"] = lambda_api.address
        print(json.dumps(_measure(lb, lambda_api, invocations)))


def _measure(lb, lambda_api, invocations: int) -> dict[str, dict[str, float]]:
    from invoke import LambdaContext

    import llm_server.lambda_handler as entry
    from llm_server.core.free_mode import FreeModeQuota
    from llm_server.core.runner import TurnRunner
    from llm_server.providers.bedrock.provider import BedrockProvider
    from llm_server.providers.openai import OpenAIResponsesProvider
    from llm_server.usage.ledger import UsageLedger
    from llm_server.utils.log import logger

    logger.setLevel("INFO")
    for handler in logging.getLogger(logger.name).handlers:
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    spans: dict[str, list[float]] = {}
    entry._asgi = _timed(entry._asgi, spans.setdefault("mangum", []))
    TurnRunner.run = _timed(TurnRunner.run, spans.setdefault("runner", []))
    FreeModeQuota.admit = _timed(FreeModeQuota.admit, spans.setdefault("admission", []))
    for cls, call in ((OpenAIResponsesProvider, "_create"), (BedrockProvider, "_retried")):
        cls.generate = _timed(cls.generate, spans.setdefault("generate", []))
        setattr(cls, call, _timed(getattr(cls, call), spans.setdefault("upstream", [])))
    results = {}
    extension = bool(lambda_api.registered)  # registered at import, or not at all
    chats = [*lb.CHATS.items(), (UNWRITTEN, lb.CHATS["OpenAI (the caller's key)"])]
    with contextlib.redirect_stdout(io.StringIO()) as emf:
        for path, body in chats:
            if path == UNWRITTEN:
                UsageLedger._add_now = lambda *_: None  # the row handed over, not written
            chat = json.loads(lb.event("/api/v1/chat", body))
            rows: dict[str, list[float]] = {name: [] for name, _ in STAGES}
            for index in range(invocations + 50):
                emf.seek(0)
                emf.truncate()
                for samples in spans.values():
                    samples.clear()
                context = LambdaContext()
                lambda_api.invoke(context.aws_request_id)
                started = time.perf_counter()
                response = entry.handler(chat, context)
                whole = time.perf_counter() - started
                assert response["statusCode"] == 200, response
                if extension:  # Lambda waits for the extension before the next
                    assert lambda_api.finished(context.aws_request_id)
                if index >= 50:
                    _add_row(rows, whole, {name: sum(v) for name, v in spans.items()})
            results[path] = {name: statistics.median(v) * 1000 for name, v in rows.items()}
    return results


UNWRITTEN = "OpenAI, the ledger's row not written (not a product figure)"


def _add_row(rows: dict[str, list[float]], whole: float, span: dict[str, float]) -> None:
    rows["handler"].append(whole)
    rows["powertools"].append(whole - span["mangum"])
    rows["app"].append(span["mangum"] - span["runner"])
    rows["turn"].append(span["runner"] - span["generate"])
    rows["admission"].append(span.get("admission", 0.0))
    rows["provider"].append(span["generate"] - span["upstream"])
    rows["upstream"].append(span["upstream"])
    rows["overhead"].append(whole - span["upstream"])


def _timed(call, seconds: list[float]):
    """`call` (a function or coroutine function) adding each call's time to `seconds`."""
    import inspect

    if inspect.iscoroutinefunction(call):

        async def timed_coroutine(*args, **kwargs):
            started = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                seconds.append(time.perf_counter() - started)

        return timed_coroutine

    def timed_call(*args, **kwargs):
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    return timed_call


def run_child(code: Path, invocations: int) -> dict[str, dict[str, float]]:
    """The child's figures, for the function code in `code` on today's layer."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(LAYER), str(code)])}
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--invocations", str(invocations)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _median_of(results: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per path and stage, the median of the rounds' figures."""
    return {
        path: {stage: statistics.median(r[path][stage] for r in results) for stage in stages}
        for path, stages in results[0].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=1000, help="per path and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", help="another commit, measured in the same run")
    parser.add_argument(
        "--dynamodb-rtt-ms", type=float, default=0, help="added to each DynamoDB call (a region's)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.invocations)
        return
    os.environ["BENCH_DYNAMODB_RTT_MS"] = str(args.dynamodb_rtt_ms)  # the children's stand-ins
    # the compared commit checked out afresh (a worktree kept from an earlier run could be stale)
    with code_variants(args.compare) as variants:
        trees = {
            f"@{name}" if code else "today": code or BUILD / "ChatFunction"
            for name, code in reversed(variants)
        }
        rounds: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, code in trees.items():
                rounds[name].append(run_child(code, args.invocations))
    figures = {name: _median_of(results) for name, results in rounds.items()}
    print(
        f"warm invocations, {args.invocations} per path in each of {args.rounds} rounds,"
        f" medians in ms (stages: see --help); DynamoDB round trip +{args.dynamodb_rtt_ms:g} ms"
    )
    for path in next(iter(figures.values())):
        print(f"{path}:")
        print(f"  {'stage':48}" + "".join(f"{name:>14}" for name in figures))
        for stage, label in STAGES:
            cells = "".join(f"{figures[name][path][stage]:14.3f}" for name in figures)
            print(f"  {label:48}{cells}")


if __name__ == "__main__":
    main()
