"""Upstream failures in our terms, worded as the SDK words them: wording kept, keys never."""

from __future__ import annotations

import math
from typing import Any

from llm_server.exceptions import (
    AuthenticationException,
    BadRequestException,
    LLMServerException,
    NotFoundException,
    OpenAIClientException,
    PermissionException,
    RateLimitException,
    UpstreamTimeoutException,
)
from llm_server.providers.openai.retry import RETRYABLE_STATUS
from llm_server.utils.redact import redact_keys


def map_status(
    status: int, error: Any, message: str, retry_after: str | None
) -> LLMServerException:
    """An upstream error status in ours, worded as the SDK's error for it would be.

    `error` is the body's `error` object (or the whole body when it has none), `message` the
    words to fall back on, `retry_after` the header as sent.
    """
    reason = redact_keys(_upstream_message(error, message))
    if status == 401:
        return AuthenticationException("The model provider rejected the API key")
    if status == 403:
        return PermissionException(f"The model provider refused the request: {reason}")
    if status == 429:
        return RateLimitException(
            f"The model provider is rate limiting: {reason}", retry_after=_seconds(retry_after)
        )
    if status == 404:  # e.g. a model the key cannot use: OpenAI's own 404, passed on as one
        return NotFoundException(
            f"The model provider found no such thing: {reason}",
            code=_upstream_code(error) or "not_found",
        )
    if status < 500 and status not in RETRYABLE_STATUS:
        return BadRequestException(
            f"The model provider rejected the request: {reason}",
            code=_upstream_code(error) or "upstream_bad_request",
        )
    return OpenAIClientException(f"The model provider failed with status {status}: {reason}")


def _upstream_message(error: Any, message: str) -> str:
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
    return message


def _upstream_code(error: Any) -> str | None:
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code.isidentifier() and len(code) <= 64 else None


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    # `inf`, `1e999` or `nan` say nothing usable: fall back to our own backoff.
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def too_slow() -> UpstreamTimeoutException:
    """No reply within the call's time budget: 504."""
    return UpstreamTimeoutException("The model provider did not answer in time")


def unreachable() -> OpenAIClientException:
    """A connection refused, reset or dropped before a reply."""
    return OpenAIClientException(
        "Could not connect to the model provider", code="upstream_unreachable"
    )


def malformed() -> OpenAIClientException:
    """A 200 whose body or events are not the Responses API's: 502, not a crash."""
    return OpenAIClientException(
        "The model provider sent a malformed response", code="upstream_malformed"
    )


def broke_off() -> OpenAIClientException:
    """A stream that ended before its final event (a reset can look like a quiet end)."""
    return OpenAIClientException(
        "The model provider's stream broke off before the response was complete",
        code="upstream_unreachable",
    )


def stream_failure(event: dict[str, Any]) -> OpenAIClientException:
    """A `response.failed` or `error` event, with upstream's words less any key fragment."""
    response = event.get("response")
    error = response.get("error") if isinstance(response, dict) else None
    error = error if isinstance(error, dict) else event
    message = redact_keys(str(error.get("message") or "unknown error"))
    return OpenAIClientException(f"The model provider failed mid-stream: {message}")
