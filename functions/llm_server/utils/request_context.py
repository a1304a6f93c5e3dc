"""Per-request fields (request id, model, tokens, ...) gathered for the one log line per request.

The middleware opens a fresh dict for each request; deeper layers add to it with `annotate`.
The dict is mutated, never replaced, so additions survive any context copy made on the way.
These are log fields only: nothing decides anything by reading them (decisions travel as
arguments, see `core/turn.RequestContext`).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("llm_server_request_fields", default=None)


def start_request(**fields: Any) -> dict[str, Any]:
    """Open the field dict of a new request and return it."""
    current: dict[str, Any] = dict(fields)
    _fields.set(current)
    return current


def annotate(**fields: Any) -> None:
    """Add fields to the current request's log line (a no-op outside a request)."""
    current = _fields.get()
    if current is not None:
        current.update(fields)
