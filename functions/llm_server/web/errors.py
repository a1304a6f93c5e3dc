"""The one place where failures become HTTP responses, each in its API's shape.

This layer names no API: each hands it an `ErrorShape` (its body, the field its caller's own key
travels in, its status rules), and `ErrorShapes` picks one by the request's path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from llm_server.core.text import bounded, clean_text
from llm_server.core.turn import CALLER_KEY
from llm_server.exceptions import BadRequestException, LLMServerException, ValidationException
from llm_server.utils.log import logger
from llm_server.utils.request_context import annotate

MAX_RETRY_AFTER = 86_400
DEFAULT_RETRY_AFTER = 1.0
MAX_PARAM = 256  # a param is a path of names: each bounded where it is made, the whole here
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}

ErrorBody = Callable[[LLMServerException, str, str | None, str], dict[str, Any]]
"""(the error, its message, its param, the request's session id) → the JSON body."""


def _same(status: int) -> int:
    return status


@dataclass(frozen=True)
class ErrorShape:
    """How one API writes an error.

    `key_field` names where its callers send their own key: the core's `CALLER_KEY` in a
    message or param becomes it. `status` maps the status (OpenAI's API answers 400, not 422).
    """

    key_field: str
    body: ErrorBody
    status: Callable[[int], int] = _same

    def render(self, exc: LLMServerException, session_id: str = "") -> dict[str, Any]:
        """The error's body; also records the error on the request's log line."""
        annotate(error_type=exc.error_type, error_code=exc.code)
        param = self.key_field if exc.param == CALLER_KEY else exc.param
        if param is not None:
            param = bounded(param, MAX_PARAM)
        return self.body(exc, exc.message.replace(CALLER_KEY, self.key_field), param, session_id)


@dataclass(frozen=True)
class ErrorShapes:
    """Each API's shape by the path prefix it serves; `default` for every other path.

    An API's shape comes from a function (called when a path of its needs it), so an API
    nobody has called yet is not imported for it.
    """

    default: ErrorShape
    by_prefix: tuple[tuple[str, Callable[[], ErrorShape]], ...] = ()

    def for_path(self, path: str) -> ErrorShape:
        """The shape of the API that serves `path`."""
        shape = next((load for prefix, load in self.by_prefix if path.startswith(prefix)), None)
        return self.default if shape is None else shape()


def error_response(
    exc: LLMServerException, shape: ErrorShape, session_id: str = ""
) -> JSONResponse:
    """Render an exception as its status, `Retry-After` if any, and its API's error body."""
    headers = {}
    retry_after = exc.retry_after
    if retry_after is None and exc.status_code in (429, 503):
        retry_after = DEFAULT_RETRY_AFTER  # every "come back later" says when
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after_seconds(retry_after))
    body = shape.render(exc, session_id)
    return JSONResponse(body, status_code=shape.status(exc.status_code), headers=headers)


def retry_after_seconds(value: float) -> int:
    """`Retry-After` in whole seconds: at least 1, at most a day (whatever upstream said)."""
    if not math.isfinite(value):
        return MAX_RETRY_AFTER
    return min(MAX_RETRY_AFTER, max(1, math.ceil(value)))


def validation_exception(errors: Any) -> ValidationException:
    """One message naming every bad field; malformed JSON is a 400, bad fields a 422."""
    errors = list(errors)
    for error in errors:
        if error.get("type") == "json_invalid":
            where = error.get("ctx", {}).get("error", "")
            return BadRequestException(
                f"The request body is not valid JSON ({where})"
                if where
                else "The request body is not valid JSON",
                code="invalid_json",
            )
    problems = [_describe(error) for error in errors]
    first_param = _param_of(errors[0]) if errors else None
    return ValidationException("; ".join(problems), code="invalid_value", param=first_param)


def _param_of(error: dict[str, Any]) -> str | None:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    return ".".join(loc) or None


def _describe(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        message = "field required"
    return f"{_param_of(error) or 'body'}: {message}"


def _session_id_of(body: Any) -> str:
    """The request's session id to echo in its error body, if it is text that can travel."""
    value = body.get("session_id") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return ""
    try:
        return clean_text(value)[:256]
    except ValueError:  # a NUL or a lone surrogate: the body could not be encoded
        return ""


def install_error_handlers(app: FastAPI, shapes: ErrorShapes) -> None:
    """Register every handler on `app` (a bug's 500 is rendered by the request middleware)."""

    async def on_llm_server_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LLMServerException)  # registered for that type only
        if exc.status_code >= 500:
            logger.error("request failed", extra={"error_code": exc.code, "reason": exc.message})
        session_id = getattr(request.state, "session_id", "")  # set by the native chat route
        return error_response(exc, shapes.for_path(request.url.path), session_id)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # registered for that type only
        error = validation_exception(exc.errors())
        shape = shapes.for_path(request.url.path)
        return error_response(error, shape, _session_id_of(exc.body))

    async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # registered for that type only
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404:
            detail = f"No route for {request.method} {request.url.path}"
        elif exc.status_code == 400:  # FastAPI's words for a body it could not decode
            detail = "The request body could not be parsed: send UTF-8 encoded JSON"
        error = ValidationException(detail, code=code, status_code=exc.status_code)
        response = error_response(error, shapes.for_path(request.url.path))
        response.headers.update(exc.headers or {})
        return response

    app.add_exception_handler(LLMServerException, on_llm_server_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
