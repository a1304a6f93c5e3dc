"""How the native API writes an error: the chat response shape, `success: false`, and `error`."""

from __future__ import annotations

from typing import Any

from llm_server.exceptions import LLMServerException
from llm_server.web.errors import ErrorShape


def _body(
    exc: LLMServerException, message: str, param: str | None, session_id: str
) -> dict[str, Any]:
    # on first use: every path's errors take this shape, system info's too, whose cold start
    # need not declare the chat's schemas
    from llm_server.native_api.schemas import ErrorDetail, ErrorResponse

    detail = ErrorDetail(type=exc.error_type, code=exc.code, message=message, param=param)
    body = ErrorResponse(session_id=session_id, success=False, error_message=message, error=detail)
    return body.model_dump(mode="json")


NATIVE_ERRORS = ErrorShape(key_field="openai_api_key", body=_body)
"""Every path outside the OpenAI-compatible API answers errors this way."""


def error_body(exc: LLMServerException, session_id: str = "") -> dict[str, Any]:
    """The `ErrorResponse` body for an exception (the chat stream's `error` event too)."""
    return NATIVE_ERRORS.render(exc, session_id)
