"""The one place where failures become HTTP responses, all in the `ErrorResponse` shape."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from llm_server.core.text import bounded, clean_text
from llm_server.core.turn import CALLER_KEY
from llm_server.exceptions import BadRequestException, LLMServerException, ValidationException
from llm_server.native_api.schemas import ErrorDetail, ErrorResponse
from llm_server.openai_api.translate import openai_error
from llm_server.utils.log import logger
from llm_server.utils.request_context import annotate

MAX_RETRY_AFTER = 86_400
DEFAULT_RETRY_AFTER = 1.0
MAX_PARAM = 256  # a param is a path of names: each bounded where it is made, the whole here
NATIVE_KEY_FIELD = "openai_api_key"  # where each API carries the caller's own OpenAI key
OPENAI_KEY_FIELD = "Authorization"
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def is_openai_path(path: str) -> bool:
    """Whether a path belongs to the OpenAI-compatible API, whose errors use OpenAI's shape."""
    return path.startswith("/v1/")


def error_response(
    exc: LLMServerException, session_id: str = "", openai_shape: bool = False
) -> JSONResponse:
    """Render an exception as its status, `Retry-After` if any, and the error body.

    The body is `ErrorResponse` (the chat response shape), or for the OpenAI-compatible API
    OpenAI's `{"error": {...}}`, so OpenAI's SDKs raise their matching exception classes.
    """
    headers = {}
    retry_after = exc.retry_after
    if retry_after is None and exc.status_code in (429, 503):
        retry_after = DEFAULT_RETRY_AFTER  # every "come back later" says when
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after_seconds(retry_after))
    if openai_shape:  # OpenAI answers bad parameters with 400, never 422
        annotate(error_type=exc.error_type, error_code=exc.code)
        status = 400 if exc.status_code == 422 else exc.status_code
        return JSONResponse(openai_error_body(exc), status_code=status, headers=headers)
    body = error_body(exc, session_id)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def retry_after_seconds(value: float) -> int:
    """`Retry-After` in whole seconds: at least 1, at most a day (whatever upstream said)."""
    if not math.isfinite(value):
        return MAX_RETRY_AFTER
    return min(MAX_RETRY_AFTER, max(1, math.ceil(value)))


def error_body(exc: LLMServerException, session_id: str = "") -> dict[str, Any]:
    """The `ErrorResponse` body for an exception, the native API's.

    Also records the error on the request's log line (the stream error event uses this too).
    """
    annotate(error_type=exc.error_type, error_code=exc.code)
    message, param = _named(exc, NATIVE_KEY_FIELD)
    body = ErrorResponse(
        session_id=session_id,
        success=False,
        error_message=message,
        error=ErrorDetail(type=exc.error_type, code=exc.code, message=message, param=param),
    )
    return body.model_dump(mode="json")


def openai_error_body(exc: LLMServerException) -> dict[str, Any]:
    """OpenAI's error body for an exception, the `/v1` API's."""
    message, param = _named(exc, OPENAI_KEY_FIELD)
    return openai_error(message, exc.error_type, exc.code, param).model_dump(mode="json")


def _named(exc: LLMServerException, key_field: str) -> tuple[str, str | None]:
    """The message and param with the core's name for the caller's key made the API's own."""
    param = key_field if exc.param == CALLER_KEY else exc.param
    if param is not None:
        param = bounded(param, MAX_PARAM)
    return exc.message.replace(CALLER_KEY, key_field), param


async def _on_llm_server_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LLMServerException)  # registered for that type only
    if exc.status_code >= 500:
        logger.error("request failed", extra={"error_code": exc.code, "reason": exc.message})
    session_id = getattr(request.state, "session_id", "")  # set by the native chat route
    return error_response(exc, session_id, openai_shape=is_openai_path(request.url.path))


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # registered for that type only
    error = validation_exception(exc.errors())
    openai_shape = is_openai_path(request.url.path)
    return error_response(error, _session_id_of(exc.body), openai_shape=openai_shape)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # registered for that type only
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404:
        detail = f"No route for {request.method} {request.url.path}"
    elif exc.status_code == 400:  # FastAPI's words for a body it could not decode
        detail = "The request body could not be parsed: send UTF-8 encoded JSON"
    error = ValidationException(detail, code=code, status_code=exc.status_code)
    response = error_response(error, openai_shape=is_openai_path(request.url.path))
    response.headers.update(exc.headers or {})
    return response


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


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on `app` (a bug's 500 is rendered by the request middleware)."""
    app.add_exception_handler(LLMServerException, _on_llm_server_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
