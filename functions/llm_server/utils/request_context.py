"""Per-request fields (request id, model, tokens, ...) gathered for the one log line per request.

The middleware opens a fresh dict for each request; deeper layers add to it with `annotate`.
The dict is mutated, never replaced, so additions survive any context copy made on the way.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("llm_server_request_fields", default=None)
_deadline: ContextVar[float | None] = ContextVar("llm_server_request_deadline", default=None)


def start_request(deadline: float | None = None, **fields: Any) -> dict[str, Any]:
    """Open the field dict of a new request and return it.

    `deadline` (a `time.monotonic()` value) is when the request must have been answered, for
    example the Lambda's own timeout minus a margin; None when only the settings bound it.
    """
    current: dict[str, Any] = dict(fields)
    _fields.set(current)
    _deadline.set(deadline)
    return current


def time_left(limit: float) -> float:
    """Seconds the current request may still spend: `limit`, or less if its deadline is nearer."""
    deadline = _deadline.get()
    if deadline is None:
        return limit
    return min(limit, deadline - time.monotonic())


def annotate(**fields: Any) -> None:
    """Add fields to the current request's log line (a no-op outside a request)."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


def current_fields() -> dict[str, Any]:
    """The fields recorded so far for the current request."""
    return _fields.get() or {}
