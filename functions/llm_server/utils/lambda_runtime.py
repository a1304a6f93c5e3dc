"""What the Lambda execution environment says about itself, for `/api/v1/system/info`."""

from __future__ import annotations

import os
import platform
from typing import Any

_invocations = 0
_restored = False  # from a SnapStart snapshot


def gateway_request_id(event: Any) -> str | None:
    """API Gateway's request id in a Lambda event (REST and HTTP APIs alike), if it has one.

    The request's id (`X-Request-Id`) and the logs' `correlation_id`; read directly, where
    Powertools' `correlation_id_path` runs a JMESPath search on every invocation.
    """
    context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return request_id if isinstance(request_id, str) and request_id else None


def record_invocation() -> None:
    """Count an invocation of this execution environment (the first one is the cold start)."""
    global _invocations
    _invocations += 1


def start_environment() -> None:
    """Count from zero again, for an environment restored from a SnapStart snapshot.

    Its next invocation is the cold start: here, in system info, and for Powertools (the
    `ColdStart` metric and the logs' `cold_start`), whatever ran before the snapshot.
    """
    global _invocations, _restored
    from aws_lambda_powertools.logging import logger
    from aws_lambda_powertools.metrics.provider import cold_start

    _invocations = 0
    _restored = True
    cold_start.reset_cold_start_flag()
    logger.is_cold_start = True


def lambda_info(context: Any) -> dict[str, Any] | None:
    """The function, runtime and invocation facts; None when not running on Lambda."""
    if context is None:  # only the Lambda handler (Mangum) puts a context in the scope
        return None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return {
        "function_name": getattr(context, "function_name", None),
        "function_version": getattr(context, "function_version", None),
        "memory_limit_mb": _int(getattr(context, "memory_limit_in_mb", None)),
        "region": os.getenv("AWS_REGION") or os.getenv("AWS_DEFAULT_REGION"),
        "architecture": platform.machine(),
        "runtime": os.getenv("AWS_EXECUTION_ENV"),
        "request_id": getattr(context, "aws_request_id", None),
        "remaining_time_ms": remaining() if callable(remaining) else None,
        "cold_start": _invocations <= 1,
        "restored_from_snapshot": _restored,
        "invocations": _invocations,
        "log_group": getattr(context, "log_group_name", None),
        "log_stream": getattr(context, "log_stream_name", None),
        "xray_trace_id": os.getenv("_X_AMZN_TRACE_ID"),
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
