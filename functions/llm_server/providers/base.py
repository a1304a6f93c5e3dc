"""The one small interface every model provider implements (its values: `llm_server.values`).

A provider that embeds text implements `Embedder` too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from llm_server.values import (
    EmbeddingRequest,
    Embeddings,
    Generation,
    GenerationRequest,
    ThoughtDelta,
)

Payer = Literal["nobody", "key", "operator"]
"""Who pays for a provider's calls, which decides who may use it and what it counts against:
`nobody` (the local model: anyone), `key` (the OpenAI key each request carries: the caller's,
or in free mode the server's) or `operator` (the server's own account, Bedrock: known callers
only, within the free-mode quotas)."""


class ChatProvider(Protocol):
    """A model behind LLM Server: OpenAI's Responses API, Bedrock, or a local model."""

    name: str
    payer: Payer
    honours: frozenset[str]
    """The `SamplingOptions` names this provider applies (and `images`, if it reads them)."""

    async def generate(self, request: GenerationRequest) -> Generation:
        """Produce one reply, raising an `LLMServerException` subclass on failure."""
        ...

    def stream(
        self, request: GenerationRequest
    ) -> AsyncGenerator[str | ThoughtDelta | Generation, None]:
        """Yield the reply's text as it is produced, then the complete `Generation` last.

        A consumer that stops early (a client gone) closes the iterator, and the provider stops
        producing. Errors before the first item are raised from the first `anext`.
        """
        ...

    def status(self) -> dict[str, Any]:
        """What `/api/v1/system/info` shows about this provider (never a key)."""
        ...

    def models(self) -> list[str]:
        """The model names this provider serves by name (empty: whatever a request names)."""
        ...

    async def count_tokens(self, request: GenerationRequest) -> int | None:
        """The request's input tokens as the model counts them (None: it cannot say)."""
        ...

    def reply_model(self, model: str) -> str:
        """The model a reply to a request for `model` names, as far as known before it answers.

        A streamed reply names it from its first chunk, as the whole reply does.
        """
        ...

    async def warm_up(self) -> None:
        """Load now what the first request would load (the local model), before traffic."""
        ...

    def prime(self) -> None:
        """Load what a first call would load on its path (Lambda, when init is ahead of traffic)."""
        ...

    def renew(self) -> None:
        """Forget clients and connections: after a SnapStart restore, they would be shared."""
        ...

    async def aclose(self) -> None:
        """Release what the provider holds open (connections), at server shutdown."""
        ...


@dataclass(frozen=True)
class EmbeddingLimits:
    """What one request to a model may hold, beyond the server's own `EMBEDDING_MAX_INPUTS`.

    `max_inputs`: inputs a request (the provider batches them as its API needs); `max_chars`:
    characters an input (None: the provider counts tokens itself, or its own limit applies);
    `dimensions`: the values `dimensions` may take (empty: it cannot be set; None: any).
    `honours`: the `EmbeddingRequest.chosen` names it applies.
    """

    max_inputs: int
    max_chars: int | None = None
    dimensions: frozenset[int] | None = frozenset()
    honours: frozenset[str] = frozenset()


@runtime_checkable
class Embedder(Protocol):
    """A provider that embeds text too; it says which models, as it says which it chats with."""

    name: str
    payer: Payer

    def embedding_models(self) -> list[str]:
        """The embedding models it serves by name."""
        ...

    def embedding_limits(self, model: str) -> EmbeddingLimits:
        """What a request for `model` may hold and set."""
        ...

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """The vectors of the request's inputs, in order; an `LLMServerException` on failure."""
        ...
