"""How the OpenAI-compatible API writes an error: OpenAI's `{"error": {...}}`.

OpenAI's SDKs raise their matching exception classes from it; bad parameters are 400, as OpenAI
answers them.
"""

from __future__ import annotations

from typing import Any

from llm_server.exceptions import LLMServerException
from llm_server.openai_api.translate import openai_error
from llm_server.web.errors import ErrorShape


def _body(
    exc: LLMServerException, message: str, param: str | None, session_id: str
) -> dict[str, Any]:
    return openai_error(message, exc.error_type, exc.code, param).model_dump(mode="json")


def _status(status: int) -> int:
    return 400 if status == 422 else status


OPENAI_ERRORS = ErrorShape(key_field="Authorization", body=_body, status=_status)


def openai_error_body(exc: LLMServerException) -> dict[str, Any]:
    """OpenAI's error body for an exception (a stream's in-band error event too)."""
    return OPENAI_ERRORS.render(exc)
