"""Pure-ASGI middleware: request id, body limits and text check, one JSON log line per request."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import copy_context
from functools import partial

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_server.core.text import unencodable_field
from llm_server.exceptions import (
    BadRequestException,
    LLMServerException,
    PayloadTooLargeException,
    RequestTimeoutException,
    StoreUnavailableException,
    UnsupportedMediaTypeException,
    ValidationException,
)
from llm_server.stores.faults import is_store_fault
from llm_server.utils.after_answer import AfterAnswer
from llm_server.utils.lambda_runtime import gateway_request_id
from llm_server.utils.log import logger
from llm_server.utils.metrics import finish_request, open_request
from llm_server.utils.request_context import annotate, start_request
from llm_server.web.errors import ErrorShapes, error_response

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestContextMiddleware:
    """Give every request an id (echoed as `X-Request-Id`), cap its body and log its outcome.

    The body is read whole here, within `body_timeout_seconds` (a body sent a byte at a time
    would otherwise hold its connection and its memory for ever), and every string in it is
    checked once for text no encoder can write (a 4xx naming the field, not a 500 deep inside).
    Where `after_answer` runs work after the answer has gone (Lambda's extension), the log
    line and metrics are handed to it, fixed as the request ends: nothing the caller waits for.
    """

    def __init__(
        self,
        app: ASGIApp,
        errors: ErrorShapes,
        max_body_bytes: int,
        lambda_margin_seconds: float,
        body_timeout_seconds: float = 30.0,
        after_answer: AfterAnswer | None = None,
    ) -> None:
        self.app = app
        self.after_answer = after_answer
        self.errors = errors
        self.max_body_bytes = max_body_bytes
        self.lambda_margin_seconds = lambda_margin_seconds
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))  # read once; the helpers below share it
        request_id = _request_id(scope, headers)
        started = time.perf_counter()
        fields = start_request(request_id=request_id)
        open_request()
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
            line = {"method": scope["method"], "path": scope["path"], **fields}
            metrics = finish_request(
                fields["latency_ms"], fields.get("error_type"), fields.get("status", 500)
            )
            write = partial(copy_context().run, _write_outcome, line, metrics)
            if self.after_answer is None or not self.after_answer.defer(write, wait=False):
                write()

        async def send_with_id(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
                fields["status"] = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"request-id", request_id.encode()))  # Anthropic's SDKs read it
                _no_store_unless_told(headers)
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finish()
            await send(message)

        try:
            problem = _header_problem(headers, self.max_body_bytes)
            if problem is None:
                problem, replay = await self._read_body(receive, _content_type(headers))
            if problem is not None:
                response = error_response(problem, self.errors.for_path(scope["path"]))
                await response(scope, receive, send_with_id)
            elif "aws.event" in scope:  # Mangum: the whole request came in one event
                await self.app(scope, replay, send_with_id)
            else:
                call = self.app(scope, replay, send_with_id)
                await _cancelled_on_disconnect(call, receive, lambda: finished)
        except Exception as exc:
            # A store that could not answer (after its retries) is a 503; anything else is a
            # bug: answered here, inside this middleware, so it still carries X-Request-Id
            # (Starlette's own 500 is rendered outside it).
            fault = is_store_fault(exc)
            logger.exception("store unavailable" if fault else "unhandled error")
            if started_response:
                raise
            error = _store_unavailable() if fault else _unexpected()
            response = error_response(error, self.errors.for_path(scope["path"]))
            await response(scope, receive, send_with_id)
        finally:
            finish()

    async def _read_body(
        self, receive: Receive, content_type: str
    ) -> tuple[ValidationException | None, Receive]:
        """Read the whole body and return what is wrong with it, or a `receive` that replays it.

        Reading it here, rather than counting while the app reads, lets an oversized chunked
        body get its 413 even though FastAPI turns errors raised while it reads into a 400.
        Every body is JSON in UTF-8: one of another type (or none), chunked or not, is a 415,
        so a page on another origin cannot post a chat as a "simple" request (`text/plain`, a
        `Blob` of no type) that browsers send without asking CORS first.
        """
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                replay, body = await self._buffered(receive)
        except TimeoutError:
            return _too_slow(self.body_timeout_seconds), receive
        if body is None:
            return _too_large(self.max_body_bytes), receive
        if body and not _is_json(content_type):
            return _not_json(content_type), receive
        if b"\x00" in body:  # UTF-16 or UTF-32: JSON between systems is UTF-8 (RFC 8259)
            return _not_utf8(), receive
        field = unencodable_field(body)
        if field is not None:
            return _unencodable(field), receive
        return None, replay

    async def _buffered(self, receive: Receive) -> tuple[Receive, bytes | None]:
        """A `receive` replaying the body, and the body (None past the size limit)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([], message), b""
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return receive, None
            if not message.get("more_body", False):
                return _replay(chunks, None, receive), b"".join(chunks)


def _write_outcome(line: dict[str, object], metrics: Callable[[], None]) -> None:
    """Write a finished request's log line and its metrics."""
    logger.info("request", extra=line)
    metrics()


async def _cancelled_on_disconnect(
    call: Awaitable[None], receive: Receive, answered: Callable[[], bool]
) -> None:
    """Run `call`, cancelling it if the client goes away before it has been answered.

    Nothing else sees a caller leave while a whole reply is being made (a non-streamed chat, a
    tool call held back until complete): the generation would go on for nobody, holding the
    model and a concurrency slot. Once the answer is sent, `receive` says disconnect too: then
    `call` is left to finish.
    """
    import anyio

    try:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                if answered():
                    return
                annotate(status=499, error_type="client_disconnected")
                group.cancel_scope.cancel()

            group.start_soon(watch)
            await call
            group.cancel_scope.cancel()
    except BaseExceptionGroup as failed:  # the task group's wrapping: the call's own error
        raise failed.exceptions[0] from None


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


def _store_unavailable() -> LLMServerException:
    return StoreUnavailableException(
        "A store this request needs is unavailable; retry shortly", retry_after=1
    )


def _unexpected() -> LLMServerException:
    return LLMServerException("An unexpected error occurred on the server")


def _too_slow(seconds: float) -> RequestTimeoutException:
    return RequestTimeoutException(f"The request body did not arrive within {seconds:g} seconds")


def _unencodable(field: str) -> ValidationException:
    return ValidationException(
        f"{field}: must be valid Unicode (it has a lone surrogate)", param=field
    )


def _header_problem(headers: dict[bytes, bytes], limit: int) -> ValidationException | None:
    """Reject, before reading it, a body that is declared too large or is not JSON."""
    try:
        length = int(headers.get(b"content-length", b"0"))
    except ValueError:
        length = 0
    if length > limit:
        return _too_large(limit)
    content_type = _content_type(headers)
    if length and not _is_json(content_type):
        return _not_json(content_type)
    return None


def _content_type(headers: dict[bytes, bytes]) -> str:
    """The request's media type, lower case, without parameters ("" when it sends none)."""
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _not_json(content_type: str) -> UnsupportedMediaTypeException:
    return UnsupportedMediaTypeException(
        f"Content-Type must be application/json, not {content_type[:64] or 'absent'}"
    )


def _not_utf8() -> ValidationException:
    return BadRequestException(
        "The request body must be JSON in UTF-8 (RFC 8259); this one is UTF-16 or UTF-32",
        code="invalid_encoding",
        param="body",
    )


def _request_id(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """The API Gateway request id on Lambda, a sane caller `X-Request-Id`, or a new one."""
    gateway_id = gateway_request_id(scope.get("aws.event"))
    if gateway_id is not None:
        return gateway_id
    candidate = headers.get(b"x-request-id", b"").decode("latin-1")
    return candidate if _SAFE_ID.fullmatch(candidate) else uuid.uuid4().hex


def _no_store_unless_told(headers: list[tuple[bytes, bytes]]) -> None:
    """API answers are nobody's to cache (a shared cache, the browser's); pages say their own."""
    if not any(name.lower() == b"cache-control" for name, _ in headers):
        headers.append((b"cache-control", b"no-store"))
    if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
        headers.append((b"x-content-type-options", b"nosniff"))
