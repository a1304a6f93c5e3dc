"""Bedrock's Converse and ConverseStream through botocore, on the function's own AWS credentials.

Its embedding models (Titan, Cohere: `embeddings.py`) through InvokeModel, on the same client.

Calls run on this provider's own threads, retried within the request's time budget
(`BEDROCK_TIMEOUT_SECONDS`, or less: the request's `deadline`): `calls.py`. botocore is imported
on first use (or by `prime`), never at module load. With a guardrail (BEDROCK_GUARDRAIL), every
call carries Converse's `guardrailConfig` (see `wire.py`), and the provider honours `guardrail`:
the turn core then checks with ApplyGuardrail only what Converse's guardrail does not read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from llm_server.exceptions import LLMServerException
from llm_server.providers.base import EmbeddingLimits, Payer
from llm_server.providers.bedrock.calls import RuntimeCalls
from llm_server.providers.bedrock.errors import classify
from llm_server.providers.bedrock.models import embedding_family
from llm_server.providers.retry import GaveUp, Retryable, RetryPolicy
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

if TYPE_CHECKING:  # the wire loads with the first call: a cold start that makes none skips it
    from llm_server.providers.bedrock.wire import Reply

T = TypeVar("T")
CONCURRENT_EMBEDDING_CALLS = 8
"""InvokeModel calls one embedding request runs at once (Titan's one text a call): the rest of
the call threads stay free for other tenants' requests."""


class BedrockProvider:
    """Chat with the Bedrock models `BEDROCK_MODELS` lists, billed to the operator's account.

    `client` is a bedrock-runtime client to use instead of making one (a test's, under
    botocore's `Stubber`); `guardrail` the guardrail's (identifier, version), if one is set.
    """

    name = "bedrock"
    payer: Payer = "operator"
    # Converse has top_p and stop sequences, tools, images, documents; JSON answers through a
    # forced tool; reasoning as Claude's thinking (refused by name on other models: wire.py).
    # No seed, penalties or logprobs: those are refused by name.
    honours = frozenset(
        {"top_p", "stop", "tools", "images", "documents", "response_format", "reasoning"}
    )

    def __init__(
        self,
        models: list[str],
        region: str | None = None,
        timeout: float = 25.0,
        prompt_caching: bool = False,
        max_connections: int = 10,
        retry: RetryPolicy | None = None,
        client: Any = None,
        guardrail: tuple[str, str] | None = None,
    ) -> None:
        self._models = list(dict.fromkeys(models))
        self._caching = prompt_caching
        self._guardrail = guardrail
        self._calls = RuntimeCalls(region, timeout, max_connections, retry or RetryPolicy(), client)
        if guardrail is not None:  # Converse applies it: the turn core need not, on what it reads
            self.honours = BedrockProvider.honours | {"guardrail"}

    def models(self) -> list[str]:
        """The chat model ids requests may name (and only those: others are never sent)."""
        return [model for model in self._models if embedding_family(model) is None]

    def embedding_models(self) -> list[str]:
        """The embedding model ids of `BEDROCK_MODELS` (Titan, Cohere)."""
        return [model for model in self._models if embedding_family(model) is not None]

    def embedding_limits(self, model: str) -> EmbeddingLimits:
        """What the model's family takes (`embeddings.limits`)."""
        from llm_server.providers.bedrock.embeddings import limits

        return limits(model)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """One InvokeModel call per Titan text or Cohere batch, a few at once, in input order.

        Each is retried within the request's budget; the first to fail for good cancels the
        ones not yet made, and its error is the request's.
        """
        from llm_server.providers.bedrock.embeddings import bodies, read

        client, model = self._calls.client(), request.model
        gate = asyncio.Semaphore(CONCURRENT_EMBEDDING_CALLS)
        started = time.monotonic()

        async def call(body: bytes, texts: tuple[str, ...]) -> tuple[list[bytes], int, int]:
            async with gate:
                (raw, headers), attempts, _ = await self._retried(
                    request, lambda: _invoke(client, model, body)
                )
            record_upstream_call(attempts - 1, None)
            return (*read(model, raw, headers, texts), attempts)

        calls = [asyncio.ensure_future(call(*made)) for made in bodies(request)]
        try:
            results = await asyncio.gather(*calls)
        finally:
            for pending in calls:
                pending.cancel()
        annotate(
            upstream_ms=round((time.monotonic() - started) * 1000, 1),
            upstream_calls=len(results),
        )
        vectors = tuple(vector for found, _, _ in results for vector in found)
        tokens = sum(counted for _, counted, _ in results)
        return Embeddings(vectors, model, tokens, max(tried for _, _, tried in results))

    def reply_model(self, model: str) -> str:
        """The model id as asked: Converse answers under it."""
        return model

    async def count_tokens(self, request: GenerationRequest) -> int | None:
        """Bedrock's CountTokens for Claude models (it generates nothing); None elsewhere.

        A count that fails is None too: the runner's estimate is worth more than an error.
        """
        from llm_server.providers.bedrock.models import base_id, family
        from llm_server.providers.bedrock.wire import converse_request

        if family(request.model) != "anthropic":
            return None
        kwargs = converse_request(request, self._caching).kwargs
        fields = ("messages", "system", "toolConfig", "additionalModelRequestFields")
        converse = {name: kwargs[name] for name in fields if name in kwargs}
        client = self._calls.client()
        model = base_id(request.model)  # CountTokens takes a model, not a profile
        try:
            answer, _, _ = await self._retried(
                request,
                lambda: client.count_tokens(modelId=model, input={"converse": converse}),
            )
        except LLMServerException:
            return None
        return int(answer.get("inputTokens") or 0)

    async def warm_up(self) -> None:
        """Nothing to load before traffic on demand (see `prime`)."""

    def prime(self) -> None:
        """Import botocore and make the client (its endpoint and credentials resolved)."""
        self._calls.client()

    def renew(self) -> None:
        """Forget the client, its connections and credentials (after a SnapStart restore).

        The service models botocore parsed stay (`utils.aws`): the next client is made quickly.
        """
        self._calls.renew()

    def status(self) -> dict[str, Any]:
        """The models, region, time budget and prompt caching (never a credential)."""
        return {
            "models": self.models(),
            "region": self._calls.made_region() or "the function's",
            "timeout_seconds": self._calls.timeout,
            "max_retries": self._calls.retry.max_retries,
            "prompt_caching": self._caching,
        }

    async def aclose(self) -> None:
        """Let the call threads go (at server shutdown)."""
        self._calls.shutdown()

    async def generate(self, request: GenerationRequest) -> Generation:
        """One `converse` call, retried within the budget."""
        from llm_server.providers.bedrock.wire import converse_request, whole_reply

        call = converse_request(request, self._caching, self._guardrail)
        client = self._calls.client()
        response, attempts, started = await self._retried(
            request, lambda: client.converse(**call.kwargs)
        )
        reply = whole_reply(response, request, call.answer_tool)
        return self._finished(reply, attempts, started)

    async def stream(
        self, request: GenerationRequest
    ) -> AsyncGenerator[str | ThoughtDelta | Generation, None]:
        """`converse_stream`: text deltas as they come, then the `Generation`.

        Retries happen only before the first event; a failure mid-stream is raised as is.
        """
        from llm_server.providers.bedrock.stream import StreamReader
        from llm_server.providers.bedrock.wire import Reply, converse_request

        call = converse_request(request, self._caching, self._guardrail, streamed=True)
        client = self._calls.client()
        response, attempts, started = await self._retried(
            request, lambda: client.converse_stream(**call.kwargs)
        )
        events = response["stream"]
        reader = StreamReader(Reply(request, call.answer_tool))
        try:
            iterator = iter(events)
            while (event := await self._next(request, iterator, started, attempts)) is not None:
                for delta in reader.read(event):
                    yield delta
        finally:
            events.close()
        yield self._finished(reader.reply, attempts, started)

    async def _next(
        self, request: GenerationRequest, events: Iterator[Any], started: float, attempts: int
    ) -> dict[str, Any] | None:
        """The stream's next event (None at its end), within the request's time budget."""
        try:
            return await self._calls.on_thread(
                lambda: next(events, None), self._calls.budget(request.deadline)
            )
        except Exception as exc:
            error = classify(exc, request.model)
            final = error.error if isinstance(error, Retryable) else error
            self._log_call(request, started, attempts, final)
            raise final from None

    async def _retried(
        self, request: GenerationRequest | EmbeddingRequest, call: Callable[[], T]
    ) -> tuple[T, int, float]:
        """`call` on a thread, retried while the budget lasts: (result, attempts, start)."""
        started = time.monotonic()
        try:
            return await self._calls.retried(call, request.deadline, request.model)
        except GaveUp as gave_up:
            self._log_call(request, started, gave_up.attempts, gave_up.error)
            raise gave_up.error from None

    def _finished(self, reply: Reply, attempts: int, started: float) -> Generation:
        generation = reply.generation(attempts)
        fields: dict[str, Any] = {
            "upstream_ms": round((time.monotonic() - started) * 1000, 1),
            "upstream_attempts": attempts,
            "stop_reason": reply.stop_reason,
        }
        if generation.cached_input_tokens or generation.cache_write_tokens:
            fields.update(
                cache_read_tokens=generation.cached_input_tokens,
                cache_write_tokens=generation.cache_write_tokens,
            )
        if len(reply.calls) > len(generation.tool_calls):
            fields["tool_calls_dropped"] = len(reply.calls) - len(generation.tool_calls)
        record_upstream_call(attempts - 1, None)
        annotate(**fields)
        return generation

    @staticmethod
    def _log_call(
        request: GenerationRequest | EmbeddingRequest, started: float, attempts: int, error: Any
    ) -> None:
        record_upstream_call(attempts - 1, error.error_type)
        logger.warning(
            "upstream call failed",
            extra={
                "upstream_ms": round((time.monotonic() - started) * 1000, 1),
                "upstream_attempts": attempts,
                "model": request.model,
                "error_code": error.code,
            },
        )


def _invoke(client: Any, model: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    """One InvokeModel call, its answer read whole (on a call thread): its body and headers."""
    response = client.invoke_model(
        modelId=model, body=body, contentType="application/json", accept="application/json"
    )
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return response["body"].read(), headers
