"""Bedrock's Converse and ConverseStream through botocore, on the function's own AWS credentials.

Its embedding models (Titan, Cohere: `embeddings.py`) through InvokeModel, on the same client.

botocore is synchronous: each call runs on this provider's own thread pool (one thread per
connection, so Bedrock calls never queue behind the stores' threads). botocore's retries are
off; ours run within the request's time budget (`BEDROCK_TIMEOUT_SECONDS`, or less: the
request's `deadline`). The endpoint is botocore's: `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` points it
at an emulator. botocore is imported on first use (or by `prime`), never at module load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from llm_server.exceptions import (
    ConfigurationException,
    LLMServerException,
    UpstreamTimeoutException,
)
from llm_server.providers.base import EmbeddingLimits, Payer
from llm_server.providers.bedrock.errors import classify
from llm_server.providers.bedrock.models import embedding_family
from llm_server.providers.retry import GaveUp, Retryable, RetryPolicy, with_retries
from llm_server.utils import aws
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
CONNECT_TIMEOUT = 2.0
CONCURRENT_EMBEDDING_CALLS = 8
"""InvokeModel calls one embedding request runs at once (Titan's one text a call): the rest of
the call threads stay free for other tenants' requests."""


class BedrockProvider:
    """Chat with the Bedrock models `BEDROCK_MODELS` lists, billed to the operator's account.

    `client` is a bedrock-runtime client to use instead of making one (a test's, under
    botocore's `Stubber`).
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
    ) -> None:
        self._models = list(dict.fromkeys(models))
        self._region = region
        self._timeout = timeout
        self._caching = prompt_caching
        self._connections = max_connections
        self._retry = retry or RetryPolicy()
        self._client: Any = client
        self._threads = ThreadPoolExecutor(max_connections, thread_name_prefix="bedrock")

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

        client, model = self._bedrock(), request.model
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
        client = self._bedrock()
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
        self._bedrock()

    def renew(self) -> None:
        """Forget the client, its connections and credentials (after a SnapStart restore).

        The service models botocore parsed stay (`utils.aws`): the next client is made quickly.
        """
        self._client = None

    def status(self) -> dict[str, Any]:
        """The models, region, time budget and prompt caching (never a credential)."""
        region = self._region or (self._client.meta.region_name if self._client else None)
        return {
            "models": self.models(),
            "region": region or "the function's",
            "timeout_seconds": self._timeout,
            "max_retries": self._retry.max_retries,
            "prompt_caching": self._caching,
        }

    async def aclose(self) -> None:
        """Let the call threads go (at server shutdown)."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def generate(self, request: GenerationRequest) -> Generation:
        """One `converse` call, retried within the budget."""
        from llm_server.providers.bedrock.wire import converse_request, whole_reply

        call = converse_request(request, self._caching)
        client = self._bedrock()
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

        call = converse_request(request, self._caching)
        client = self._bedrock()
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
            return await self._on_thread(lambda: next(events, None), self._budget(request))
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
        deadline = started + self._budget(request)

        async def attempt() -> T:
            try:
                return await self._on_thread(call, deadline - time.monotonic())
            except Exception as exc:
                raise classify(exc, request.model) from None

        try:
            result, attempts = await with_retries(attempt, self._retry, deadline)
        except GaveUp as gave_up:
            self._log_call(request, started, gave_up.attempts, gave_up.error)
            raise gave_up.error from None
        return result, attempts, started

    async def _on_thread(self, call: Callable[[], T], budget: float) -> T:
        if budget <= 0:
            raise Retryable(UpstreamTimeoutException("Bedrock did not answer in time"), None)
        future = asyncio.get_running_loop().run_in_executor(self._threads, call)
        try:
            return await asyncio.wait_for(future, budget)
        except TimeoutError:
            error = UpstreamTimeoutException("Bedrock did not answer in time")
            raise Retryable(error, None) from None

    def _budget(self, request: GenerationRequest | EmbeddingRequest) -> float:
        budget = self._timeout
        if request.deadline is not None:
            budget = min(budget, request.deadline - time.monotonic())
        return budget

    def _bedrock(self) -> Any:
        """The bedrock-runtime client, made on first use (thread-safe once made)."""
        if self._client is None:
            from botocore.config import Config
            from botocore.exceptions import NoRegionError

            config = Config(
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=self._timeout,
                retries={"total_max_attempts": 1},
                max_pool_connections=self._connections,
                tcp_keepalive=True,
            )
            try:
                self._client = aws.client(
                    "bedrock-runtime", region_name=self._region, config=config
                )
            except NoRegionError:
                raise ConfigurationException(
                    "Bedrock needs a region: set BEDROCK_REGION (or AWS_REGION)"
                ) from None
        return self._client

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
