"""OpenAI's Responses API (`client.responses.create`) through the official SDK.

`base_url` points it at any server that speaks the Responses API. The SDK is imported on first
use only, so a cold start that never reaches OpenAI does not pay for it.

Retries are ours, not the SDK's (its `max_retries` is 0): exponential backoff with full jitter on
429, 408, 409, 5xx and connection errors, honouring `Retry-After`, and never past the request's
time budget (`OPENAI_TIMEOUT_SECONDS`, or less: the request's `deadline`), so the caller gets
our 504 before API Gateway gives up on the connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from llm_server.exceptions import (
    AuthenticationException,
    BadRequestException,
    ConfigurationException,
    LLMServerException,
    OpenAIClientException,
    PermissionException,
    RateLimitException,
    UpstreamTimeoutException,
)
from llm_server.providers.base import Generation, GenerationRequest
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_upstream_call
from llm_server.utils.redact import key_fingerprint, redact_keys
from llm_server.utils.request_context import annotate

if TYPE_CHECKING:
    from openai import AsyncOpenAI

RETRYABLE_STATUS = {408, 409, 429}


def pick_transport(choice: Literal["auto", "httpx", "aiohttp"]) -> Literal["httpx", "aiohttp"]:
    """The SDK's HTTP client: "auto" takes aiohttp where it is installed, else httpx2.

    Under many concurrent requests the SDK's aiohttp client costs about a third less CPU per
    request than its default, httpx2 (see bench/README.md). A Lambda container serves one
    request at a time, where that buys nothing: the template sets `OPENAI_HTTP_CLIENT=httpx`
    (so not even the search for aiohttp lengthens a cold start), and the layer has no aiohttp.
    """
    if choice == "httpx":
        return "httpx"
    from importlib.util import find_spec

    if choice == "auto":
        return "aiohttp" if find_spec("aiohttp") else "httpx"
    if choice == "aiohttp" and not find_spec("aiohttp"):
        raise ConfigurationException("OPENAI_HTTP_CLIENT=aiohttp needs aiohttp installed")
    return choice


def preload() -> None:
    """Do now what the first call would do: load the SDK and resolve its request's type hints.

    That is the SDK, its Responses resource, and the type hints its request transform reads and
    caches (0.7-1 s here), for Lambda initialisations that run ahead of traffic (see
    `lambda_handler`).
    """
    from openai._utils._transform import get_type_hints
    from openai.resources.responses import AsyncResponses  # noqa: F401
    from openai.types.responses import response_create_params

    for params in (
        response_create_params.ResponseCreateParamsNonStreaming,
        response_create_params.ResponseCreateParamsStreaming,
    ):
        get_type_hints(params, include_extras=True)  # cached by the SDK, as on a call


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts after the first, and the backoff's base and cap (seconds)."""

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number `attempt` (1-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class OpenAIResponsesProvider:
    """Chat through `responses.create`, every key's client on one shared connection pool."""

    name = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 25.0,
        retry: RetryPolicy | None = None,
        max_clients: int = 64,
        transport: Literal["auto", "httpx", "aiohttp"] = "auto",
    ) -> None:
        self._base_url = base_url
        self._transport = pick_transport(transport)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._max_clients = max_clients
        self._base: AsyncOpenAI | None = None
        self._clients: OrderedDict[str, AsyncOpenAI] = OrderedDict()

    def models(self) -> list[str]:
        """None by name: any model a request names is passed on (the runner lists the usual)."""
        return []

    async def warm_up(self) -> None:
        """Nothing to load before traffic on demand: the SDK stays lazy (see `preload`)."""

    def status(self) -> dict[str, Any]:
        """Where requests go, the time budget and retries, and how many keys have a client."""
        return {
            "base_url": self._base_url or "https://api.openai.com/v1",
            "timeout_seconds": self._timeout,
            "max_retries": self._retry.max_retries,
            "pooled_clients": len(self._clients),
            "http_client": self._transport,
        }

    async def generate(self, request: GenerationRequest) -> Generation:
        """Call the Responses API, retrying within the time budget, and map the outcome."""
        body, attempts, started = await self._create(request, stream=False)
        return self._finish(request, body, attempts, started)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str | Generation, None]:
        """Stream the reply's text deltas, then the complete `Generation`.

        Retries happen only before the first event; a failure mid-stream is raised as is.
        """
        import openai

        events, attempts, started = await self._create(request, stream=True)
        final = None
        try:
            async for event in events:
                if event.type == "response.output_text.delta":
                    yield event.delta
                elif event.type in ("response.completed", "response.incomplete"):
                    final = event.response
                elif event.type in ("response.failed", "error"):
                    raise _stream_failure(event)
        except (openai.APIError, ValueError) as exc:  # ValueError: an event that is not JSON
            error = map_openai_error(exc)
            if error.code == "upstream_unreachable":
                error = _broke_off()
            self._log_call(request, started, attempts, error=error)
            raise error from None
        finally:
            await events.close()
        if final is None:  # over aiohttp, a reset can end a stream as quietly as its end
            error = _broke_off()
            self._log_call(request, started, attempts, error=error)
            raise error
        yield self._finish(request, final.to_dict(), attempts, started)

    def _finish(
        self, request: GenerationRequest, body: Any, attempts: int, started: float
    ) -> Generation:
        """The `Generation` in a final `Response` body, and the call's log figures."""
        try:
            generation = _to_generation(body, attempts)
        except LLMServerException as error:
            self._log_call(request, started, attempts, error=error)
            raise
        self._log_call(request, started, attempts, response=body)
        return generation

    async def _create(self, request: GenerationRequest, stream: bool) -> tuple[Any, int, float]:
        """`responses.create` with retries inside the budget: (result, attempts, start time)."""
        if request.api_key is None:
            raise ConfigurationException("The OpenAI provider was called without an API key")
        client = self._client_for(request.api_key.get_secret_value())
        started = time.monotonic()
        deadline = started + self._timeout
        if request.deadline is not None:
            deadline = min(deadline, request.deadline)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._call(client, request, deadline, stream), attempt, started
            except _Retryable as retry:
                wait = retry.wait if retry.wait is not None else self._retry.backoff(attempt)
                if attempt > self._retry.max_retries or time.monotonic() + wait >= deadline:
                    self._log_call(request, started, attempt, error=retry.error)
                    raise retry.error from None
                await asyncio.sleep(wait)
            except LLMServerException as error:
                self._log_call(request, started, attempt, error=error)
                raise

    async def _call(
        self, client: AsyncOpenAI, request: GenerationRequest, deadline: float, stream: bool
    ) -> Any:
        """One attempt; raises `_Retryable` or a final `LLMServerException`."""
        import openai

        budget = deadline - time.monotonic()
        if budget <= 0:
            raise UpstreamTimeoutException("The model provider did not answer in time")
        # A whole reply is read as raw JSON: the SDK would build its `Response` models from it
        # (a third of a second of pydantic schema building in a cold start, and much of its
        # per-request CPU) only for us to copy five fields out of them.
        create = client.responses.create if stream else client.responses.with_raw_response.create
        try:
            result: Any = await create(  # an event stream, or the raw HTTP response
                stream=stream or openai.omit, timeout=budget, extra_body=_request_body(request)
            )
        except openai.APIError as exc:
            error = map_openai_error(exc)
            if _is_retryable(exc):
                raise _Retryable(error, error.retry_after) from None
            raise error from None
        if stream:
            return result
        try:
            return json.loads(result.content)
        except ValueError:  # a 200 whose body is not JSON
            raise _malformed() from None

    async def aclose(self) -> None:
        """Close the shared connection pool (at server shutdown)."""
        self._clients.clear()
        if self._base is not None:
            await self._base.close()
            self._base = None

    def _http_client(self) -> Any:
        """The SDK's aiohttp-based client if chosen; None keeps the SDK's default (httpx2)."""
        if self._transport != "aiohttp":
            return None
        from openai import DefaultAioHttpClient

        return DefaultAioHttpClient(timeout=self._timeout)

    def _client_for(self, key: str) -> AsyncOpenAI:
        """A client for `key` on the one shared connection pool.

        Every key's client is `with_options(api_key=...)` of one base client, so they share its
        HTTP client and connections: a distinct key costs a small object in a bounded LRU, not a
        connection pool of its own (5,000 keys once took 500 MB that way).
        """
        fingerprint = key_fingerprint(key)
        client = self._clients.get(fingerprint)
        if client is None:
            client = self._base_client().with_options(api_key=key)
            self._clients[fingerprint] = client
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)  # shares the pool: nothing to close
        self._clients.move_to_end(fingerprint)
        return client

    def _base_client(self) -> AsyncOpenAI:
        if self._base is None:
            from openai import AsyncOpenAI

            self._base = AsyncOpenAI(
                api_key="unused",  # every request goes through a per-key copy
                base_url=self._base_url,
                timeout=self._timeout,
                max_retries=0,
                http_client=self._http_client(),
            )
        return self._base

    @staticmethod
    def _log_call(
        request: GenerationRequest,
        started: float,
        attempts: int,
        *,
        response: dict[str, Any] | None = None,
        error: LLMServerException | None = None,
    ) -> None:
        """The retry/error metrics of one call, and its figures for the request's log line.

        A success adds `upstream_ms` and `upstream_attempts` to the one line per request (a line
        of its own would double the logging cost of a request); a failure also gets a warning
        line with the attempts and the error code. Never the key.
        """
        record_upstream_call(attempts - 1, error.error_type if error else None)
        fields: dict[str, Any] = {
            "upstream_ms": round((time.monotonic() - started) * 1000, 1),
            "upstream_attempts": attempts,
        }
        if error is not None:
            fields.update(model=request.model, api_key_source=request.key_source)
            logger.warning("upstream call failed", extra={**fields, "error_code": error.code})
            return
        details = response.get("incomplete_details") if response else None
        if details:
            fields["incomplete_reason"] = details.get("reason")
        annotate(**fields)


def _request_body(request: GenerationRequest) -> dict[str, Any]:
    """The `responses.create` parameters, as JSON: the SDK sends `extra_body` as it is.

    Given as keyword arguments, they would go through the SDK's type-driven transform, which
    resolves each parameter's annotation and walks every variant of its union (every message's
    too) and changes nothing in plain values like these: 10-25 % of a proxied request's CPU here.
    """
    body: dict[str, Any] = {
        "model": request.model,
        "input": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": request.temperature,
        "max_output_tokens": request.max_tokens,
    }
    if request.instructions:
        body["instructions"] = request.instructions
    return body


class _Retryable(Exception):
    """An attempt failed in a way worth another try; carries the final error if none is left."""

    def __init__(self, error: LLMServerException, wait: float | None) -> None:
        self.error = error
        self.wait = wait


def _is_retryable(exc: Exception) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError):  # timeouts included; the budget decides
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in RETRYABLE_STATUS or status >= 500)


def _malformed() -> OpenAIClientException:
    return OpenAIClientException(
        "The model provider sent a malformed response", code="upstream_malformed"
    )


def _broke_off() -> OpenAIClientException:
    return OpenAIClientException(
        "The model provider's stream broke off before the response was complete",
        code="upstream_unreachable",
    )


def _stream_failure(event: Any) -> OpenAIClientException:
    error = getattr(getattr(event, "response", None), "error", None) or event
    message = redact_keys(str(getattr(error, "message", "") or "unknown error"))
    return OpenAIClientException(f"The model provider failed mid-stream: {message}")


def _to_generation(body: Any, attempts: int) -> Generation:
    """A `Generation` from a Responses API `Response` as JSON; malformed if it is not one."""
    try:
        usage = body.get("usage") or {}
        details = body.get("incomplete_details") or {}
        text_format = (body.get("text") or {}).get("format") or {}
        return Generation(
            text=_output_text(body.get("output") or ()),
            model=str(body["model"]),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            output_format=text_format.get("type") or "text",
            created_at=datetime.fromtimestamp(body["created_at"], tz=UTC),
            temperature=body.get("temperature"),
            attempts=attempts,
            finish_reason="length" if details.get("reason") == "max_output_tokens" else "stop",
        )
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError, OSError):
        raise _malformed() from None


def _output_text(output: Any) -> str:
    """The text of every `output_text` part of every message, joined (the SDK's `output_text`)."""
    return "".join(
        part.get("text") or ""
        for item in output
        if item.get("type") == "message"
        for part in item.get("content") or ()
        if part.get("type") == "output_text"
    )


def map_openai_error(exc: Exception) -> LLMServerException:
    """Translate an SDK error into ours; upstream wording is kept, key fragments are not."""
    import openai

    reason = redact_keys(_upstream_message(exc))
    if isinstance(exc, openai.APITimeoutError) and _timed_out(exc):
        return UpstreamTimeoutException("The model provider did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return OpenAIClientException(
            "Could not connect to the model provider", code="upstream_unreachable"
        )
    if isinstance(exc, openai.AuthenticationError):
        return AuthenticationException("The model provider rejected the API key")
    if isinstance(exc, openai.PermissionDeniedError):
        return PermissionException(f"The model provider refused the request: {reason}")
    if isinstance(exc, openai.RateLimitError):
        return RateLimitException(
            f"The model provider is rate limiting: {reason}", retry_after=_retry_after(exc)
        )
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status < 500 and status not in RETRYABLE_STATUS:
        return BadRequestException(
            f"The model provider rejected the request: {reason}",
            code=_upstream_code(exc) or "upstream_bad_request",
        )
    if isinstance(status, int):
        return OpenAIClientException(f"The model provider failed with status {status}: {reason}")
    return _malformed()


def _timed_out(exc: Exception) -> bool:
    """Whether an `APITimeoutError` really is a timeout.

    The SDK's aiohttp client reports every dropped or refused connection as a connect timeout;
    only the aiohttp error it wraps tells them apart (aiohttp's timeouts are `TimeoutError`s).
    """
    cause = exc.__cause__
    while cause is not None:
        if type(cause).__module__.partition(".")[0] == "aiohttp":
            return isinstance(cause, TimeoutError)
        cause = cause.__cause__
    return True


def _upstream_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return getattr(exc, "message", "") or str(exc)


def _upstream_code(exc: Exception) -> str | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code.isidentifier() and len(code) <= 64 else None


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    # `inf`, `1e999` or `nan` say nothing usable: fall back to our own backoff.
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None
