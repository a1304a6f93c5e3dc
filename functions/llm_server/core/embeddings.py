"""Run an embedding request for any API: its provider and key, the checks, the spend.

As a chat turn is (`runner.py`): an alias (MODEL_ALIASES) is the model it names; a gateway key's
policy may refuse the model (by its name or an alias) or the operator's money; the model picks
the provider (`Routing.route_embedding`) and who pays it the key; the request takes a
concurrency slot, is admitted by free mode's quota, the tenant's (or key's) budget and the key's
rates (its input's worst case reserved), and is charged the tokens the provider counted. What a
request may hold (inputs, characters an input, `dimensions`, the options a model honours) is
checked before any call, each a 400 naming its field.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from llm_server.config.settings import Settings
from llm_server.core.caller import Caller
from llm_server.core.key_policy import check_model, check_payer, listed
from llm_server.core.keys import KeySource
from llm_server.core.routing import Routing, rejected_key
from llm_server.core.spending import Spending
from llm_server.core.turn import RequestContext
from llm_server.exceptions import AuthenticationException, BadRequestException
from llm_server.providers.base import Embedder, EmbeddingLimits
from llm_server.utils.concurrency import ConcurrencyLimiter
from llm_server.utils.request_context import annotate
from llm_server.values import EmbeddingRequest, Embeddings, Generation

if TYPE_CHECKING:
    from llm_server.keys.records import KeyPolicy

TEXT_ONLY = (
    "input holds token arrays, which only OpenAI's own models read: send the text instead "
    "(LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))"
)


class EmbeddingRunner:
    """Embeds for every API, on the chat runner's routing, spending and concurrency slots."""

    def __init__(
        self,
        settings: Settings,
        routing: Routing,
        spending: Spending,
        limiter: ConcurrencyLimiter,
    ) -> None:
        self._settings = settings
        self._routing = routing
        self._spending = spending
        self._limiter = limiter
        for embedder in routing.embedders.values():
            if embedder.payer == "operator":
                spending.warn_unpriced(embedder.name, embedder.embedding_models())

    def models(self, policy: KeyPolicy | None = None) -> list[tuple[str, str]]:
        """(model, owner) for each embedding model served by name, owned as a chat model is.

        With a gateway key's `policy`, only those it may use (as `TurnRunner.models`).
        """
        routing = self._routing
        return [
            (model, "llm-server" if embedder.payer == "nobody" else name)
            for name, embedder in routing.embedders.items()
            for model in embedder.embedding_models()
            if listed(policy, (model, *routing.aliases_of(model)), embedder.payer == "operator")
        ]

    async def run(
        self, request: EmbeddingRequest, caller_key: str, free_mode: bool, context: RequestContext
    ) -> Embeddings:
        """The request's vectors, charged to its caller; its 4xx before any call."""
        routing, caller = self._routing, context.caller
        model = routing.aliases.get(request.model, request.model)
        check_model(caller.policy, (model, *routing.aliases_of(model)))
        embedder, key = routing.route_embedding(model, caller_key, free_mode, context)
        request = replace(request, model=model)
        check(request, embedder.embedding_limits(model), self._settings)
        check_payer(caller.policy, model, key.source is KeySource.SERVER)
        if key.source is KeySource.SERVER:
            self._spending.require_price(embedder.name, embedder.payer, model)
        annotate(provider=embedder.name, api_key_source=key.source.value)
        request = replace(
            request, api_key=key.value, key_source=key.source.value, deadline=context.deadline
        )
        async with self._limiter.slot(caller.owner):
            return await self._charged(embedder, request, caller)

    async def _charged(
        self, embedder: Embedder, request: EmbeddingRequest, caller: Caller
    ) -> Embeddings:
        """The call between its admission and its charge (what it used, whatever happens)."""
        started = time.perf_counter()
        spending, source = self._spending, request.key_source
        reservation = await spending.admit(
            embedder.name, request.model, source, caller, estimate_tokens(request), 0
        )
        used = None
        try:
            embeddings = await embedder.embed(request)
            used = Generation("", embeddings.model, embeddings.input_tokens, output_tokens=0)
        except AuthenticationException:
            raise rejected_key(source) from None
        finally:
            await spending.settle(reservation, embedder.name, source, caller, used, started)
        annotate(model=embeddings.model, input_tokens=embeddings.input_tokens)
        return embeddings


def check(request: EmbeddingRequest, limits: EmbeddingLimits, settings: Settings) -> None:
    """Refuse what the request's model cannot take, each a 400 naming its field."""
    most = min(settings.embedding_max_inputs, limits.max_inputs)
    if not 1 <= request.count <= most:
        raise BadRequestException(
            f"input has {request.count} items: {request.model} takes 1 to {most} a request "
            "(send the rest in more requests: LangChain's chunk_size, LlamaIndex's "
            "embed_batch_size)",
            param="input",
        )
    for name in request.chosen():
        if name not in limits.honours:
            raise BadRequestException(
                TEXT_ONLY if name == "input" else f"{name} is not supported by {request.model}",
                param=name,
                code="unsupported_parameter",
            )
    allowed = limits.dimensions
    if request.dimensions is not None and allowed is not None and request.dimensions not in allowed:
        raise BadRequestException(
            f"dimensions must be one of {sorted(allowed)} for {request.model}",
            param="dimensions",
        )
    _check_inputs(request, limits.max_chars)


def _check_inputs(request: EmbeddingRequest, max_chars: int | None) -> None:
    """No empty input; no text longer than the model takes."""
    for index, text in enumerate(request.texts or request.tokens):
        if not text:
            raise BadRequestException(
                f"input[{index}] is empty: every input needs text to embed", param="input"
            )
        if max_chars is not None and len(text) > max_chars:
            raise BadRequestException(
                f"input[{index}] has {len(text)} characters: {request.model} takes at most "
                f"{max_chars} an input (split the text)",
                param="input",
            )


def estimate_tokens(request: EmbeddingRequest) -> int:
    """The input's tokens at most, as the quota reserves them.

    2 UTF-8 bytes a token, as a chat's (`free_mode.reserve_tokens`), and a token an input on
    top; a token array's own length.
    """
    texts = sum(len(text.encode()) // 2 + 1 for text in request.texts)
    return texts + sum(len(tokens) for tokens in request.tokens)
