"""AWS Lambda entry point: the same FastAPI app behind Mangum, with Powertools around it.

API Gateway REST (payload 1.0) and HTTP API (2.0) events both work. A named HTTP API stage,
which API Gateway leaves in the path, is removed; `API_GATEWAY_BASE_PATH` removes a custom
domain's base path mapping. Lifespan is off (Mangum would otherwise run it on every invocation);
the app is built once per execution environment, at import, and heavy SDKs load lazily. Where
the Extensions API is there (on Lambda), a turn's ledger row and quota settlement are written
after its answer (`lambda_extension.py`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from mangum import Mangum

from llm_server.app import create_app
from llm_server.config.settings import get_settings
from llm_server.exceptions import BadRequestException
from llm_server.lambda_extension import AfterAnswerExtension
from llm_server.lambda_lifecycle import prime, register_snapstart_hooks
from llm_server.native_api.errors import NATIVE_ERRORS
from llm_server.utils.lambda_runtime import gateway_request_id, record_invocation
from llm_server.utils.log import SERVICE_NAME, logger
from llm_server.utils.metrics import metrics, record_request
from llm_server.web.errors import error_response

# Each request writes its own EMF lines (utils/metrics.py): `log_metrics` below is there for the
# ColdStart metric, and has no application metrics of its own to flush, by design.
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
# Registered during init, as the Extensions API requires (None off Lambda: writes wait for them).
after_answer = AfterAnswerExtension.start()
app = create_app(after_answer=after_answer)
_asgi = Mangum(app, lifespan="off", api_gateway_base_path=get_settings().api_gateway_base_path)


def prime_ahead_of_traffic() -> None:
    """Load during init what the first chat would load, when init runs ahead of traffic.

    With provisioned concurrency, now; with SnapStart, in a runtime hook before the snapshot
    (and the renewal after each restore). On demand, init is on the first request's path,
    whatever it is: the HTTP client and botocore stay lazy, so a cold start that never calls
    OpenAI or a store (system info, health) does not pay for them.
    """
    if os.getenv("AWS_LAMBDA_INITIALIZATION_TYPE") == "provisioned-concurrency":
        prime(app)
    register_snapstart_hooks(app)


prime_ahead_of_traffic()


def strip_stage(event: dict[str, Any]) -> dict[str, Any]:
    """Remove a named HTTP API stage (`/dev/...`) from a payload 2.0 event's path."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    if not isinstance(context, dict):
        return event
    http = context.get("http")
    stage = context.get("stage")
    if not isinstance(http, dict) or not stage or stage == "$default":
        return event
    prefix = f"/{stage}"
    path = http.get("path", "")
    if path != prefix and not path.startswith(prefix + "/"):
        return event
    stripped = path[len(prefix) :] or "/"
    return {
        **event,
        "rawPath": stripped,
        "requestContext": {**context, "http": {**http, "path": stripped}},
    }


def bad_event_response(reason: str) -> dict[str, Any]:
    """What API Gateway gets for an event Mangum cannot read: a 400 with the error body."""
    error = BadRequestException(f"Malformed API Gateway event: {reason}", code="bad_event")
    record_request(0.0, error.error_type, error.status_code)
    response = error_response(error, NATIVE_ERRORS)
    return {
        "statusCode": 400,
        "headers": {"content-type": "application/json"},
        "body": bytes(response.body).decode(),
        "isBase64Encoded": False,
    }


def traced(function: Callable[..., Any]) -> Callable[..., Any]:
    """X-Ray tracing through Powertools' Tracer, unless POWERTOOLS_TRACE_DISABLED is true.

    The X-Ray SDK is a large import (a third of a cold start here), so with tracing off it is
    not imported at all rather than imported and switched off.
    """
    if os.getenv("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return function
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE_NAME).capture_lambda_handler(function, capture_response=False)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
@traced
def _answer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(gateway_request_id(event))
    record_invocation()
    try:
        return _asgi(strip_stage(event), context)
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        # Mangum handles everything the app raises; what escapes it is an unparsable event.
        logger.warning("malformed event", extra={"error": type(exc).__name__})
        return bad_event_response(type(exc).__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer one API Gateway event; what it left for after the answer goes to the extension.

    The release comes last, once the answer (logs and metrics written) is all that is left
    to send, so the writes it releases do not compete with it for the interpreter.
    """
    if after_answer is None:
        return _answer(event, context)
    after_answer.begin(context.aws_request_id)
    try:
        return _answer(event, context)
    finally:
        after_answer.answered()
