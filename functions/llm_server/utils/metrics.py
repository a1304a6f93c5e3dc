"""CloudWatch metrics as EMF lines. The names here are the dashboard's names.

Per request, one blob in namespace `LLMServer` with dimension `service` carries the totals
(Requests, Errors, Latency and, for chats, tokens, upstream latency and retries). Small extra blobs
give the breakdowns, with low-cardinality dimensions only: `Errors` and `UpstreamErrors` by
`error_type`, and tokens and upstream latency by `model` (as the provider reports it) and
`api_key_source`.

The middleware opens a request's blobs (`open_request`); what the request records is added up
there and written as the request ends, before its last byte leaves, so nothing stays buffered
to be lost, or to leak into another request's blob (the local server runs many at once). A value
recorded outside a request (a deferred ledger write) is written at once, in a blob of its own.

The lines are written here rather than through Powertools' `Metrics`: its `add_metric` checks
the name, unit and resolution on every call, 15 calls and 89 µs a chat (bench/README.md), where
these blobs have a fixed shape checked once, by type. Powertools still writes the Lambda
`ColdStart` metric (`lambda_handler`) and its `MetricUnit` names the units; the lines are the
same EMF its serializer writes (tests/serverless and `make e2e` read them).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from enum import StrEnum
from functools import partial

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from llm_server.utils.log import SERVICE_NAME
from llm_server.values import Generation, GuardrailReport

NAMESPACE = "LLMServer"


class MetricName(StrEnum):
    """Every metric the service emits (ColdStart is Powertools' own)."""

    REQUESTS = "Requests"
    ERRORS = "Errors"
    SERVER_ERRORS = "ServerErrors"
    LATENCY = "Latency"
    UPSTREAM_LATENCY = "UpstreamLatency"
    INPUT_TOKENS = "InputTokens"
    OUTPUT_TOKENS = "OutputTokens"
    TOTAL_TOKENS = "TotalTokens"
    UPSTREAM_RETRIES = "UpstreamRetries"
    UPSTREAM_ERRORS = "UpstreamErrors"
    CACHE_HITS = "CacheHits"
    CACHE_ERRORS = "CacheErrors"
    FALLBACKS = "Fallbacks"
    COST_USD = "CostUSD"
    USAGE_WRITE_ERRORS = "UsageWriteErrors"
    GUARDRAIL_INTERVENTIONS = "GuardrailInterventions"
    COLD_START = "ColdStart"


Sample = Mapping[MetricName, tuple[MetricUnit, float]]  # what one record_* call adds
Values = Mapping[MetricName, tuple[MetricUnit, float | list[float]]]  # what one blob holds
# Powertools' metrics, for the Lambda handler's ColdStart only (`log_metrics`)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE_NAME)


class _Blobs:
    """One request's metrics: its totals (each value a sample) and its breakdowns, until written."""

    __slots__ = ("breakdowns", "totals")

    def __init__(self) -> None:
        self.totals: dict[MetricName, tuple[MetricUnit, list[float]]] = {}
        self.breakdowns: list[tuple[dict[str, str], Values]] = []

    def add(self, values: Sample) -> None:
        for name, (unit, value) in values.items():
            self.totals.setdefault(name, (unit, []))[1].append(value)

    def write(self, timestamp: int | None = None) -> None:
        """Write the blobs, stamped `timestamp` (ms since the epoch; default: now)."""
        stamp = int(time.time() * 1000) if timestamp is None else timestamp
        totals: Values = {
            name: (unit, v[0] if len(v) == 1 else v) for name, (unit, v) in self.totals.items()
        }
        lines = [_line({}, totals, stamp)] if totals else []
        lines += [_line(dimensions, values, stamp) for dimensions, values in self.breakdowns]
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()


_current: ContextVar[_Blobs | None] = ContextVar("llm_server_metrics", default=None)


def _line(dimensions: dict[str, str], values: Values, timestamp: int) -> str:
    """One EMF blob: the values under `service` and `dimensions`, in namespace LLMServer."""
    directive = {
        "Namespace": NAMESPACE,
        "Dimensions": [["service", *dimensions]],
        "Metrics": [{"Name": name.value, "Unit": unit.value} for name, (unit, _) in values.items()],
    }
    document: dict[str, object] = {
        "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [directive]},
        "service": SERVICE_NAME,
        **dimensions,
    }
    document.update((name.value, value) for name, (_, value) in values.items())
    return json.dumps(document, separators=(",", ":"))


def open_request() -> None:
    """Start the current request's blobs (the middleware does, as a request comes in)."""
    _current.set(_Blobs())


def _add(values: Sample) -> None:
    blobs = _current.get() or _Blobs()
    blobs.add(values)
    if blobs is not _current.get():
        blobs.write()  # outside a request: at once


def _breakdown(dimensions: dict[str, str], values: Values) -> None:
    blobs = _current.get() or _Blobs()
    blobs.breakdowns.append((dimensions, values))
    if blobs is not _current.get():
        blobs.write()


def record_request(latency_ms: float, error_type: str | None, status: int) -> None:
    """Count a finished request and write its blobs now (see `finish_request`)."""
    finish_request(latency_ms, error_type, status)()


def finish_request(latency_ms: float, error_type: str | None, status: int) -> Callable[[], None]:
    """Count a finished request (latency, error by type, our fault?); what writes its blobs.

    The request's blobs are closed here, stamped with this moment: the writer may run later,
    after the answer has gone (on Lambda, in the after-answer extension), or now.
    `Errors` counts every error answer, 4xx included; `ServerErrors` only 5xx, what the
    error-rate alarm watches (a caller's bad key or field is not an incident).
    """
    _add(
        {
            MetricName.REQUESTS: (MetricUnit.Count, 1),
            MetricName.LATENCY: (MetricUnit.Milliseconds, latency_ms),
            MetricName.ERRORS: (MetricUnit.Count, 1 if error_type else 0),
            MetricName.SERVER_ERRORS: (MetricUnit.Count, 1 if status >= 500 else 0),
        }
    )
    if error_type:
        _breakdown({"error_type": error_type}, {MetricName.ERRORS: (MetricUnit.Count, 1)})
    blobs = _current.get()
    if blobs is None:  # written at once, as values recorded outside a request are
        return _nothing
    _current.set(None)
    return partial(blobs.write, int(time.time() * 1000))


def _nothing() -> None:
    """No blobs left to write."""


def record_generation(
    generation: Generation, key_source: str, upstream_ms: float, cost_usd: float | None
) -> None:
    """Record one model call: tokens, latency and cost (when priced).

    In total and by model and key source (never by tenant: cardinality), one EMF blob each.
    """
    values = {
        MetricName.UPSTREAM_LATENCY: (MetricUnit.Milliseconds, upstream_ms),
        MetricName.INPUT_TOKENS: (MetricUnit.Count, generation.input_tokens),
        MetricName.OUTPUT_TOKENS: (MetricUnit.Count, generation.output_tokens),
        MetricName.TOTAL_TOKENS: (MetricUnit.Count, generation.total_tokens),
    }
    if cost_usd is not None:
        values[MetricName.COST_USD] = (MetricUnit.NoUnit, cost_usd)
    _add(values)
    dimensions = {"model": generation.model[:64] or "unknown", "api_key_source": key_source}
    _breakdown(dimensions, values)


def record_upstream_call(retries: int, error_type: str | None) -> None:
    """Record the retries one upstream call needed and, if it failed in the end, its error type."""
    _add({MetricName.UPSTREAM_RETRIES: (MetricUnit.Count, retries)})
    if error_type:
        _breakdown({"error_type": error_type}, {MetricName.UPSTREAM_ERRORS: (MetricUnit.Count, 1)})


def record_cache_hit() -> None:
    """Count a reply served from the response cache."""
    _add({MetricName.CACHE_HITS: (MetricUnit.Count, 1)})


def record_fallback(model: str, fallback: str) -> None:
    """Count a turn run again on its model's fallback (MODEL_FALLBACKS), by the failed model."""
    _add({MetricName.FALLBACKS: (MetricUnit.Count, 1)})
    dimensions = {"model": model, "fallback": fallback}
    _breakdown(dimensions, {MetricName.FALLBACKS: (MetricUnit.Count, 1)})


def record_guardrail(report: GuardrailReport) -> None:
    """Count a turn the guardrail intervened on; by policy (`words`, `pii`...) and where.

    The policy is its kind, never the operator's names (cardinality).
    """
    one = {MetricName.GUARDRAIL_INTERVENTIONS: (MetricUnit.Count, 1)}
    _add(one)
    for source, policy in dict.fromkeys(map(_source_and_policy, report.findings)):
        _breakdown({"source": source, "guardrail_policy": policy}, one)


def _source_and_policy(finding: str) -> tuple[str, str]:
    """`input:pii:EMAIL` → (`input`, `pii`)."""
    source, _, rest = finding.partition(":")
    return source, rest.partition(":")[0]


def record_usage_write_error() -> None:
    """Count a usage-ledger write that failed (the request itself was answered)."""
    _add({MetricName.USAGE_WRITE_ERRORS: (MetricUnit.Count, 1)})


def record_cache_error() -> None:
    """Count a shared-cache call that failed (answered as a miss)."""
    _add({MetricName.CACHE_ERRORS: (MetricUnit.Count, 1)})
