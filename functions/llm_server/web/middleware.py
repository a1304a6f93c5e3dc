"""Pure-ASGI middleware: request id, body-size limit, and one JSON log line per request."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_server.exceptions import (
    LLMServerException,
    PayloadTooLargeException,
    UnsupportedMediaTypeException,
    ValidationException,
)
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_request
from llm_server.utils.request_context import start_request
from llm_server.web.errors import error_response, is_openai_path

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestContextMiddleware:
    """Give every request an id (echoed as `X-Request-Id`), cap its body and log its outcome."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, lambda_margin_seconds: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.lambda_margin_seconds = lambda_margin_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))  # read once; the helpers below share it
        request_id = _request_id(scope, headers)
        started = time.perf_counter()
        fields = start_request(request_id=request_id)
        # What the routes need to know of the request, on its own state (`request.state`).
        state = scope.setdefault("state", {})
        state.update(request_id=request_id, deadline=_deadline(scope, self.lambda_margin_seconds))
        finished = False
        started_response = False

        def finish() -> None:
            """Log and count the request once, before its last byte leaves (so no race)."""
            nonlocal finished
            if finished:
                return
            finished = True
            fields["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
            logger.info(
                "request", extra={"method": scope["method"], "path": scope["path"], **fields}
            )
            record_request(
                fields["latency_ms"], fields.get("error_type"), fields.get("status", 500)
            )

        async def send_with_id(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
                fields["status"] = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finish()
            await send(message)

        try:
            problem = _header_problem(headers, self.max_body_bytes)
            replay = None if problem else await self._read_body(receive)
            if problem is None and replay is None:
                problem = _too_large(self.max_body_bytes)
            if problem is not None:
                response = error_response(problem, openai_shape=is_openai_path(scope["path"]))
                await response(scope, receive, send_with_id)
            else:
                assert replay is not None  # no problem means the body was read
                await self.app(scope, replay, send_with_id)
        except Exception:
            # A bug, not the caller's fault: answer the 500 here, inside this middleware, so it
            # still carries X-Request-Id (Starlette's own 500 is rendered outside it).
            logger.exception("unhandled error")
            if started_response:
                raise
            error = LLMServerException("An unexpected error occurred on the server")
            response = error_response(error, openai_shape=is_openai_path(scope["path"]))
            await response(scope, receive, send_with_id)
        finally:
            finish()

    async def _read_body(self, receive: Receive) -> Receive | None:
        """Read the whole body (at most the limit) and return a `receive` that replays it.

        Reading it here, rather than counting while the app reads, lets an oversized chunked
        body get its 413 even though FastAPI turns errors raised while it reads into a 400.
        Returns None when the body is over the limit.
        """
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([], message)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return _replay(chunks, None, receive)


def _replay(chunks: list[bytes], first: Message | None, receive: Receive | None = None) -> Receive:
    """A `receive` that yields the buffered body once, then defers to the real one."""
    pending: list[Message] = (
        [first] if first else [{"type": "http.request", "body": b"".join(chunks)}]
    )

    async def replay_receive() -> Message:
        if pending:
            return pending.pop()
        return await receive() if receive else {"type": "http.disconnect"}

    return replay_receive


def _deadline(scope: Scope, margin: float) -> float | None:
    """On Lambda: when the function times out, less `margin` to answer in; else None."""
    remaining = getattr(scope.get("aws.context"), "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return time.monotonic() + remaining() / 1000 - margin


def _too_large(limit: int) -> PayloadTooLargeException:
    return PayloadTooLargeException(f"The request body is larger than the limit of {limit} bytes")


def _header_problem(headers: dict[bytes, bytes], limit: int) -> ValidationException | None:
    """Reject, before reading it, a body that is declared too large or is not JSON."""
    try:
        length = int(headers.get(b"content-length", b"0"))
    except ValueError:
        length = 0
    if length > limit:
        return _too_large(limit)
    content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
    if length and content_type and not _is_json(content_type):
        return UnsupportedMediaTypeException(
            f"Content-Type must be application/json, not {content_type[:64]}"
        )
    return None


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _request_id(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """The API Gateway request id on Lambda, a sane caller `X-Request-Id`, or a new one."""
    event: dict[str, Any] = scope.get("aws.event") or {}
    gateway_id = (event.get("requestContext") or {}).get("requestId")
    if isinstance(gateway_id, str) and gateway_id:
        return gateway_id
    candidate = headers.get(b"x-request-id", b"").decode("latin-1")
    return candidate if _SAFE_ID.fullmatch(candidate) else uuid.uuid4().hex
