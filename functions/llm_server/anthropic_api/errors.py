"""How the Messages API writes an error: Anthropic's `{"type": "error", "error": {...}}`.

Its SDK raises its typed exceptions by status (`BadRequestError`, `RateLimitError`...), so the
status carries the kind; the `type` says it in Anthropic's words and the message names the field
(the SDK shows the message). Bad input is a 400, as Anthropic answers it.
"""

from __future__ import annotations

from typing import Any

from llm_server.exceptions import LLMServerException
from llm_server.web.errors import ErrorShape

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def _body(
    exc: LLMServerException, message: str, param: str | None, session_id: str
) -> dict[str, Any]:
    kind = ERROR_TYPES.get(_status(exc.status_code), "api_error")
    if param and not message.startswith(param):
        message = f"{param}: {message}"
    return {"type": "error", "error": {"type": kind, "message": message}}


def _status(status: int) -> int:
    return 400 if status == 422 else status


ANTHROPIC_ERRORS = ErrorShape(key_field="x-api-key", body=_body, status=_status)


def anthropic_error_body(exc: LLMServerException) -> dict[str, Any]:
    """Anthropic's error body for an exception (a stream's in-band `error` event too)."""
    return ANTHROPIC_ERRORS.render(exc)
