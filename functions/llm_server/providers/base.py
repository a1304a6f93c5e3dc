"""The one small interface every model provider implements (its values: `llm_server.values`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Literal, Protocol

from llm_server.values import Generation, GenerationRequest, ThoughtDelta

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
