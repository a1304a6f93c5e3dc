"""CloudWatch metrics as EMF lines, through Powertools. The names here are the dashboard's names.

Per request, one blob in namespace `LLMServer` with dimension `service` carries the totals
(Requests, Errors, Latency and, for chats, tokens, upstream latency and retries). Small extra blobs
give the breakdowns, with low-cardinality dimensions only: `Errors` and `UpstreamErrors` by
`error_type`, and tokens and upstream latency by `model` (as the provider reports it) and
`api_key_source`.
Under the Lambda handler, its `log_metrics` flushes the main blob after each invocation; anywhere
else (uvicorn locally or behind the Lambda Web Adapter, a test's own Mangum) each request flushes
its own, so nothing stays buffered to be lost, or to leak into someone else's blob.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from llm_server.utils.log import SERVICE_NAME
from llm_server.values import Generation

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
    COLD_START = "ColdStart"


metrics = Metrics(namespace=NAMESPACE, service=SERVICE_NAME)
_flushed_by_handler: ContextVar[bool] = ContextVar("llm_server_metrics_flushed", default=False)


@contextmanager
def flushed_by_handler() -> Iterator[None]:
    """Mark the requests run inside this block as flushed by the Lambda handler's decorator."""
    token = _flushed_by_handler.set(True)
    try:
        yield
    finally:
        _flushed_by_handler.reset(token)


def record_request(latency_ms: float, error_type: str | None, status: int) -> None:
    """Count a finished request, its latency, its error by type, and whether it was our fault.

    `Errors` counts every error answer, 4xx included; `ServerErrors` only 5xx, what the
    error-rate alarm watches (a caller's bad key or field is not an incident).
    """
    metrics.add_metric(MetricName.REQUESTS, MetricUnit.Count, 1)
    metrics.add_metric(MetricName.LATENCY, MetricUnit.Milliseconds, latency_ms)
    metrics.add_metric(MetricName.ERRORS, MetricUnit.Count, 1 if error_type else 0)
    metrics.add_metric(MetricName.SERVER_ERRORS, MetricUnit.Count, 1 if status >= 500 else 0)
    if error_type:
        _breakdown({"error_type": error_type}, {MetricName.ERRORS: (MetricUnit.Count, 1)})
    if not _flushed_by_handler.get():
        metrics.flush_metrics()


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
    for name, (unit, value) in values.items():
        metrics.add_metric(name, unit, value)
    dimensions = {"model": generation.model[:64] or "unknown", "api_key_source": key_source}
    _breakdown(dimensions, values)


def record_upstream_call(retries: int, error_type: str | None) -> None:
    """Record the retries one upstream call needed and, if it failed in the end, its error type."""
    metrics.add_metric(MetricName.UPSTREAM_RETRIES, MetricUnit.Count, retries)
    if error_type:
        _breakdown({"error_type": error_type}, {MetricName.UPSTREAM_ERRORS: (MetricUnit.Count, 1)})


def record_cache_hit() -> None:
    """Count a reply served from the response cache."""
    metrics.add_metric(MetricName.CACHE_HITS, MetricUnit.Count, 1)


def record_fallback(model: str, fallback: str) -> None:
    """Count a turn run again on its model's fallback (MODEL_FALLBACKS), by the failed model."""
    metrics.add_metric(MetricName.FALLBACKS, MetricUnit.Count, 1)
    dimensions = {"model": model, "fallback": fallback}
    _breakdown(dimensions, {MetricName.FALLBACKS: (MetricUnit.Count, 1)})


def record_usage_write_error() -> None:
    """Count a usage-ledger write that failed (the request itself was answered)."""
    metrics.add_metric(MetricName.USAGE_WRITE_ERRORS, MetricUnit.Count, 1)


def record_cache_error() -> None:
    """Count a shared-cache call that failed (answered as a miss)."""
    metrics.add_metric(MetricName.CACHE_ERRORS, MetricUnit.Count, 1)


def _breakdown(
    dimensions: dict[str, str], values: dict[MetricName, tuple[MetricUnit, float]]
) -> None:
    blob = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE_NAME)
    for dimension, label in dimensions.items():
        blob.add_dimension(dimension, label)
    for name, (unit, value) in values.items():
        blob.add_metric(name, unit, value)
    blob.flush_metrics()
