"""How the admin API writes an error: `{"error": {"type", "code", "message", "param"}}`.

Not the chat response's shape: an operator's tools read only the error.
"""

from __future__ import annotations

from typing import Any

from llm_server.exceptions import LLMServerException
from llm_server.web.errors import ErrorShape


def _body(
    exc: LLMServerException, message: str, param: str | None, session_id: str
) -> dict[str, Any]:
    return {"error": {"type": exc.error_type, "code": exc.code, "message": message, "param": param}}


ADMIN_ERRORS = ErrorShape(key_field="Authorization", body=_body)
