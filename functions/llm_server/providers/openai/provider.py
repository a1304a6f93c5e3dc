"""OpenAI's Responses API (`POST /responses`), whole or streamed, over one HTTP client.

`base_url` points it at any server that speaks the Responses API. The calls are made directly
(`direct.py`), as the official SDK makes them, over the HTTP client library the SDK would use
(aiohttp on the local server, httpx2 on Lambda), without the SDK: a sixth of its CPU per whole
reply, no pydantic model per streamed event, and no SDK import on a cold chat (half a second;
a second on a cold streamed one).

Retries (`providers/retry.py`), as the SDK would make them: exponential backoff with full jitter on
429, 408, 409, 5xx and connection errors, honouring `Retry-After`, and never past the request's
time budget (`OPENAI_TIMEOUT_SECONDS`, or less: the request's `deadline`), so the caller gets
our 504 before API Gateway gives up on the connection.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Literal, TypeVar

from llm_server.exceptions import (
    ConfigurationException,
    LLMServerException,
)
from llm_server.providers.base import EmbeddingLimits, Payer
from llm_server.providers.openai.client import pick_transport
from llm_server.providers.openai.direct import OPENAI_BASE_URL, DirectResponses
from llm_server.providers.openai.errors import broke_off, malformed, stream_failure, too_slow
from llm_server.providers.openai.events import Events, StreamBroken, StreamStalled
from llm_server.providers.openai.wire import request_body, thought_of, to_generation
from llm_server.providers.retry import GaveUp, RetryPolicy, with_retries
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_upstream_call
from llm_server.utils.request_context import annotate
from llm_server.values import (
    EmbeddingRequest,
    Embeddings,
    Generation,
    GenerationRequest,
    ThoughtDelta,
)

T = TypeVar("T")
EMBEDDING_MODELS = ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")
"""Listed in /v1/models; any other name a request embeds with is passed on too, as for chat."""


class OpenAIResponsesProvider:
    """Chat through `POST /responses`, every key's calls on one shared connection pool.

    Embeddings through `POST /embeddings`, on the same keys, client and retries.
    """

    name = "openai"
    payer: Payer = "key"
    # The Responses API has top_p, text.format, tools and logprobs; no stop, seed or penalties.
    honours = frozenset(
        {"top_p", "response_format", "images", "documents", "tools", "logprobs", "reasoning"}
    )

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 25.0,
        retry: RetryPolicy | None = None,
        transport: Literal["auto", "httpx", "aiohttp"] = "auto",
    ) -> None:
        self._base_url = base_url
        self._transport = pick_transport(transport)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._direct = DirectResponses(base_url, self._transport)

    def models(self) -> list[str]:
        """None by name: any model a request names is passed on (the runner lists the usual)."""
        return []

    async def count_tokens(self, request: GenerationRequest) -> int | None:
        """None: the runner's estimate.

        A call to OpenAI's counter would spend the caller's time on a round trip for a figure
        the estimate gives within a fifth.
        """
        return None

    def reply_model(self, model: str) -> str:
        """The model as asked (OpenAI names its snapshot only in the reply)."""
        return model

    def embedding_models(self) -> list[str]:
        """OpenAI's embedding models, listed (any other name is passed on all the same)."""
        return list(EMBEDDING_MODELS)

    def embedding_limits(self, model: str) -> EmbeddingLimits:
        """OpenAI's inputs a request; its tokens a text and `dimensions` are OpenAI's to check."""
        from llm_server.providers.openai.embeddings import MAX_INPUTS

        return EmbeddingLimits(MAX_INPUTS, None, None, frozenset({"dimensions", "input"}))

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """`POST /embeddings`, retried within the time budget as a chat is."""
        from llm_server.providers.openai.embeddings import embeddings_body, to_embeddings

        body = embeddings_body(request)
        reply, attempts, started = await self._retried(
            request, lambda key, budget: self._direct.create(key, body, budget, "/embeddings")
        )
        try:
            embeddings = to_embeddings(reply, request.count, attempts)
        except LLMServerException as error:
            self._log_call(request, started, attempts, error=error)
            raise
        self._log_call(request, started, attempts, response=reply)
        return embeddings

    async def warm_up(self) -> None:
        """Nothing to load before traffic on demand: the HTTP client stays lazy (see `prime`)."""

    def prime(self) -> None:
        """Make the HTTP client now, with its imports and TLS context."""
        self._direct.prime()

    def renew(self) -> None:
        """Forget the client and its connections (the TLS context stays)."""
        self._direct.renew()

    def status(self) -> dict[str, Any]:
        """Where requests go, the time budget and retries, the HTTP client, whether it is open."""
        return {
            "base_url": self._base_url or OPENAI_BASE_URL,
            "timeout_seconds": self._timeout,
            "max_retries": self._retry.max_retries,
            "http_client": self._transport,
            # One client, shared by every key (direct.py): made yet?
            "direct_session": self._direct.is_open,
        }

    async def generate(self, request: GenerationRequest) -> Generation:
        """Call the Responses API, retrying within the time budget, and map the outcome."""
        body, attempts, started = await self._create(request, stream=False)
        return self._finish(request, body, attempts, started)

    async def stream(
        self, request: GenerationRequest
    ) -> AsyncGenerator[str | ThoughtDelta | Generation, None]:
        """Stream the reply's text deltas, then the complete `Generation`.

        Retries happen only before the first event; a failure mid-stream is raised as is.
        """
        events, attempts, started = await self._create(request, stream=True)
        final = None
        try:
            async for item in _read(events):
                if isinstance(item, str | ThoughtDelta):
                    yield item
                else:
                    final = item
            if final is None:  # a reset can end a stream as quietly as its end
                raise broke_off()
        except LLMServerException as error:
            self._log_call(request, started, attempts, error=error)
            raise
        finally:
            await events.aclose()
        yield self._finish(request, final, attempts, started)

    def _finish(
        self, request: GenerationRequest, body: Any, attempts: int, started: float
    ) -> Generation:
        """The `Generation` in a final `Response` body, and the call's log figures."""
        try:
            generation = to_generation(body, attempts)
        except LLMServerException as error:
            self._log_call(request, started, attempts, error=error)
            raise
        self._log_call(request, started, attempts, response=body)
        return generation

    async def _create(self, request: GenerationRequest, stream: bool) -> tuple[Any, int, float]:
        """`responses.create` with retries inside the budget: (result, attempts, start time)."""
        body = request_body(request)
        if not stream:
            return await self._retried(
                request, lambda key, budget: self._direct.create(key, body, budget)
            )
        return await self._retried(
            request, lambda key, budget: self._direct.stream(key, body, budget)
        )

    async def _retried(
        self,
        request: GenerationRequest | EmbeddingRequest,
        call: Callable[[str, float], Awaitable[T]],
    ) -> tuple[T, int, float]:
        """`call(key, budget)` with retries inside the budget: (result, attempts, start time)."""
        if request.api_key is None:
            raise ConfigurationException("The OpenAI provider was called without an API key")
        key = request.api_key.get_secret_value()
        started = time.monotonic()
        deadline = started + self._timeout
        if request.deadline is not None:
            deadline = min(deadline, request.deadline)
        try:
            result, attempts = await with_retries(
                lambda: _attempt(call, key, deadline), self._retry, deadline
            )
        except GaveUp as gave_up:
            self._log_call(request, started, gave_up.attempts, error=gave_up.error)
            raise gave_up.error from None
        return result, attempts, started

    async def aclose(self) -> None:
        """Close the shared connection pool (at server shutdown)."""
        await self._direct.aclose()

    @staticmethod
    def _log_call(
        request: GenerationRequest | EmbeddingRequest,
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


async def _attempt(call: Callable[[str, float], Awaitable[T]], key: str, deadline: float) -> T:
    """One attempt with what is left of the budget; raises `Retryable` or a final error."""
    budget = deadline - time.monotonic()
    if budget <= 0:
        raise too_slow()
    return await call(key, budget)


async def _read(events: Events) -> AsyncGenerator[str | ThoughtDelta | dict[str, Any], None]:
    """Each text delta and reasoning summary delta, then the final response's JSON object.

    A reasoning item's end carries the whole thought (its encrypted content comes only then).
    What the stream's reading raised is ours: stalled (504), broken off or malformed (502).
    """
    try:
        async for event in events:
            kind = event.get("type")
            if kind in ("response.output_text.delta", "response.reasoning_summary_text.delta"):
                delta = event.get("delta")
                if not isinstance(delta, str):
                    raise malformed()
                yield delta if kind == "response.output_text.delta" else ThoughtDelta(delta, True)
            elif kind == "response.output_item.done" and _is_reasoning(event.get("item")):
                yield ThoughtDelta(summary=True, ended=thought_of(event["item"]))
            elif kind in ("response.completed", "response.incomplete"):
                response = event.get("response")
                if not isinstance(response, dict):
                    raise malformed()
                yield response
            elif kind in ("response.failed", "error"):
                raise stream_failure(event)
    except StreamStalled:
        raise too_slow() from None
    except StreamBroken:
        raise broke_off() from None


def _is_reasoning(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "reasoning"
