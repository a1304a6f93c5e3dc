"""Run a turn, whole or streamed: routing, key choice, free-mode quota, cache and concurrency.

Both ways go through one admission sequence (`_admitted`): choose the provider and key, take a
concurrency slot (and start the timer), read the stored conversation the turn continues, admit
by the free-mode quota (reserving tokens for all of it); a key the provider rejects is remapped
to say whose key it was, and the reservation is settled with what was really used, whatever
happens (a dropped stream included). The provider is called through the guardrail
(`core/guardrail.py`: BEDROCK_GUARDRAIL), which checks what goes in and what comes out.
What checks a turn before it runs is `preparation.py`; what a failure falls back to,
`fallbacks.py`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from llm_server.config.settings import Settings
from llm_server.core.caller import Caller
from llm_server.core.embeddings import EmbeddingRunner
from llm_server.core.fallbacks import Fallbacks, ProviderFailed, as_fallible
from llm_server.core.free_mode import FreeModeQuota, input_estimate, reserve_tokens
from llm_server.core.guardrail import Guard, note
from llm_server.core.key_policy import listed
from llm_server.core.keys import KeySource
from llm_server.core.limits import Reservation
from llm_server.core.preparation import Preparation, readable
from llm_server.core.response_cache import ResponseCache
from llm_server.core.routing import Routing, rejected_key
from llm_server.core.server_key import ServerKeyStore
from llm_server.core.spending import Spending
from llm_server.core.text import text_tokens
from llm_server.core.turn import CacheResult, Outcome, RequestContext, Turn
from llm_server.exceptions import (
    AuthenticationException,
    ConflictException,
    LLMServerException,
)
from llm_server.providers.base import ChatProvider
from llm_server.usage.ledger import UsageLedger
from llm_server.utils.concurrency import ConcurrencyLimiter
from llm_server.utils.metrics import record_cache_hit
from llm_server.utils.request_context import annotate
from llm_server.values import Generation, GenerationRequest, ThoughtDelta


@dataclass
class _Admitted:
    """A turn past admission: its provider and request, and what it has produced so far.

    `generation` is the finished reply; until there is one, `sent` keeps the streamed pieces,
    so a stream cut short is charged its input and what it sent.
    """

    provider: ChatProvider
    request: GenerationRequest
    started: float = 0.0
    generation: Generation | None = None
    sent: list[str] = field(default_factory=list)

    def charged(self) -> Generation | None:
        """What the turn used, to charge it with.

        The finished reply; or for a stream cut short, its input (an estimate) and the text it
        sent, counted as tokens (`text_tokens`); None if it produced nothing (a failure, a
        cache hit).
        """
        if self.generation is not None or not self.sent:
            return self.generation
        request = self.request
        estimate = reserve_tokens(request, output=0)
        output = text_tokens(self.sent)
        return Generation("", request.model, input_tokens=estimate, output_tokens=output)


class TurnRunner:
    """Runs turns for every API. Providers, key store, cache and quota are injected."""

    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, ChatProvider],
        server_key: ServerKeyStore,
        cache: ResponseCache | None = None,
        quota: FreeModeQuota | None = None,
        ledger: UsageLedger | None = None,
        guard: Guard | None = None,
    ) -> None:
        self._settings = settings
        self._guard = guard or Guard(None)
        self._providers = dict(providers)
        self._server_key = server_key
        self._cache = cache
        self._spending = Spending(quota, ledger)
        self._routing = Routing(settings, self._providers, server_key)
        self._preparation = Preparation(settings, self._routing, self._spending)
        self._fallbacks = Fallbacks(settings, self._preparation)
        self._limiter = ConcurrencyLimiter(
            settings.max_concurrent_requests, settings.per_client_concurrency()
        )
        self.embeddings = EmbeddingRunner(settings, self._routing, self._spending, self._limiter)
        """Embedding requests, on the same routing, key policy, spending and slots as turns."""
        self._check_prices()

    def _check_prices(self) -> None:
        """Say at start which models the operator's account pays have no price (refused)."""
        for provider in self._providers.values():
            if provider.payer == "operator":
                self._spending.warn_unpriced(provider.name, provider.models())

    async def aclose(self) -> None:
        """Close the providers' connections (at server shutdown)."""
        for provider in self._providers.values():
            await provider.aclose()
        self._guard.aclose()

    async def warm_up(self) -> None:
        """Load what the providers load lazily (the local model), before traffic."""
        for provider in self._providers.values():
            await provider.warm_up()

    def prime(self) -> None:
        """Load what a first chat would load on its path (Lambda, init ahead of traffic)."""
        for provider in self._providers.values():
            provider.prime()
        self._server_key.prime()
        self._guard.prime()

    def renew(self) -> None:
        """Forget clients, connections and the cached server key (after a SnapStart restore)."""
        for provider in self._providers.values():
            provider.renew()
        self._server_key.renew()
        self._guard.renew()

    def models(self, caller: Caller | None = None) -> list[tuple[str, str]]:
        """(model, owner) pairs a request may name: chat models, then embedding models.

        Each provider's by name, and the OpenAI ones; then the aliases of any of them. The owner
        is `llm-server` for the local model, else the provider's name. With a `caller`, only
        those its key's policy lets it use.
        """
        settings = self._settings
        policy = caller.policy if caller is not None else None
        names: list[tuple[str, str]] = []
        served: set[str] = set()
        for name, provider in self._providers.items():
            owner = "llm-server" if provider.payer == "nobody" else name
            paid = provider.payer == "operator"
            served.update(provider.models())
            names += [
                (m, owner)
                for m in provider.models()
                if listed(policy, self._preparation.names(m), paid)
            ]
        if "openai" in self._providers:
            openai = [settings.default_model, *settings.openai_model_list()]
            names += [
                (name, "openai")
                for name in dict.fromkeys(openai)
                if name not in served and listed(policy, self._preparation.names(name), False)
            ]
        names += self.embeddings.models(policy)
        owners = dict(names)
        aliases = self._routing.aliases.items()
        return names + [(alias, owners[target]) for alias, target in aliases if target in owners]

    def reply_model(self, turn: Turn, context: RequestContext) -> str:
        """The model the turn's reply will name, as far as known before it answers."""
        turn = self._routing.aliased(turn)
        provider, _ = self._routing.route(turn, context)
        return provider.reply_model(turn.model or self._settings.default_model)

    async def count_tokens(self, turn: Turn, context: RequestContext) -> int:
        """The turn's input tokens: its provider's count where it has one, else an estimate.

        Checked and routed as a turn is (its caller must be one its model serves); nothing is
        generated, reserved or charged.
        """
        provider, request = self._preparation.prepare(self._routing.aliased(turn), context)
        counted = await provider.count_tokens(request)
        return input_estimate(request) if counted is None else counted

    def status(self) -> dict[str, Any]:
        """The provider setup, for `/api/v1/system/info`."""
        return {
            "llm_provider": self._settings.llm_provider,
            "server_key_source": self._server_key.source,
            "max_concurrent_requests": self._limiter.limit,
            "requests_in_progress": self._limiter.in_use,
            "providers": {name: p.status() for name, p in self._providers.items()},
            "fallbacks": self._fallbacks.targets,
            "guardrail": self._guard.tag or None,
        }

    async def run(self, turn: Turn, context: RequestContext) -> Outcome:
        """Run a turn to completion, or answer it from the response cache.

        A turn on the server's key is admitted by the free-mode quota first, cache hit or not.
        When the provider fails in a way that is not the caller's (429, 5xx, a timeout) and the
        model has a fallback (MODEL_FALLBACKS), the turn runs once more on that.
        """
        turn = self._routing.aliased(turn)
        try:
            return await self._run_once(turn, context, fallible=True)
        except ProviderFailed as failed:
            fallback = self._fallbacks.of(turn, failed, context)
            return await self._run_once(fallback, context, fallible=False)

    async def _run_once(self, turn: Turn, context: RequestContext, fallible: bool) -> Outcome:
        async with self._admitted(turn, context) as admitted:
            request = admitted.request
            key = self._cache_key(admitted.provider, request, context)
            if self._cache is not None and key is not None:
                cached = await self._cache.lookup(key)
                annotate(cache="HIT" if cached else "MISS")  # the log line's field
                if cached is not None:
                    record_cache_hit()
                    source = KeySource(request.key_source)
                    return Outcome(cached, source, request.temperature, 0.0, cache="HIT")
            try:
                generation = await self._guard.generate(admitted.provider, request)
            except LLMServerException as error:
                raise as_fallible(error, fallible, request.key_source) from None
            if self._cache is not None and key is not None:  # what it cost is not kept
                await self._cache.store(key, replace(generation, guardrail=None))
            return self._finish(admitted, generation, "MISS" if key is not None else None)

    async def reserve(self, turn: Turn, context: RequestContext) -> Reservation:
        """Admit now a turn that runs later (a background response): its quotas held till then.

        Checked and routed as it will run; `stream(..., reserved=...)` settles it.
        """
        provider, request = self._preparation.prepare(self._routing.aliased(turn), context)
        return await self._admit(provider, request, context.caller) or Reservation()

    async def stream(
        self, turn: Turn, context: RequestContext, reserved: Reservation | None = None
    ) -> AsyncGenerator[str | ThoughtDelta | Outcome, None]:
        """Run a turn streamed: text (and reasoning) deltas, then the `Outcome`.

        Holds a slot until closed. A turn `reserve` admitted passes its reservation as
        `reserved` (a fallback is admitted anew: the first try settled it).

        A stream the client drops is settled with its input and the deltas produced so far.
        A provider failing before the first delta falls back as `run` does; after, it cannot.
        """
        turn = self._routing.aliased(turn)
        try:
            async for item in self._stream_once(turn, context, True, reserved):
                yield item
        except ProviderFailed as failed:
            fallback = self._fallbacks.of(turn, failed, context)
            async for item in self._stream_once(fallback, context, fallible=False):
                yield item

    async def _stream_once(
        self,
        turn: Turn,
        context: RequestContext,
        fallible: bool,
        reserved: Reservation | None = None,
    ) -> AsyncGenerator[str | ThoughtDelta | Outcome, None]:
        async with self._admitted(turn, context, reserved) as admitted:
            stream = self._guard.stream(admitted.provider, admitted.request)
            try:
                try:
                    first = await anext(stream)
                except LLMServerException as error:
                    raise as_fallible(error, fallible, admitted.request.key_source) from None
                async for item in _prepended(first, stream):
                    if isinstance(item, Generation):
                        yield self._finish(admitted, item, None)
                    elif isinstance(item, ThoughtDelta):  # reasoning is output, charged as such
                        admitted.sent.append(item.text)
                        yield item
                    elif item:  # an empty delta is no output (Converse opens empty blocks)
                        admitted.sent.append(item)
                        yield item
            finally:
                await stream.aclose()

    @asynccontextmanager
    async def _admitted(
        self, turn: Turn, context: RequestContext, reserved: Reservation | None = None
    ) -> AsyncIterator[_Admitted]:
        """Route and key, a slot, the earlier messages, quota; remap and settle on the way out.

        `reserved`: the quota `reserve` took for the turn already (not asked again); given back
        if the turn is refused before it runs.
        """
        try:
            provider, request = self._preparation.prepare(turn, context)
            wait_until = context.deadline if context.waits else None
            async with self._limiter.slot(context.caller.owner, wait_until):
                started = time.perf_counter()
                if turn.earlier is not None:
                    earlier = await turn.earlier()
                    readable(provider, earlier)
                    request = replace(request, messages=earlier + request.messages)
                if reserved is not None:
                    _within(reserved, request)
                reservation = reserved
                if reservation is None:
                    reservation = await self._admit(provider, request, context.caller)
                reserved = None  # settled below from here on
                admitted = _Admitted(provider, request, started)
                try:
                    yield admitted
                except AuthenticationException:
                    raise rejected_key(request.key_source) from None
                finally:
                    await self._settle(reservation, admitted, context.caller)
        finally:
            if reserved is not None:
                await self.give_back(reserved)

    def slot(self, owner: str) -> AbstractAsyncContextManager[None]:
        """One of `owner`'s concurrency slots, for what holds one without a turn (a reader)."""
        return self._limiter.slot(owner)

    async def give_back(self, reserved: Reservation) -> None:
        """Return what `reserve` held for a turn that will not run (even when cancelled)."""
        await self._spending.give_back(reserved)

    async def _admit(
        self, provider: ChatProvider, request: GenerationRequest, caller: Caller
    ) -> Reservation | None:
        """The turn's reservation by its provider, model, payer and worst case, or a 429."""
        tokens = reserve_tokens(request, output=0)
        return await self._spending.admit(
            provider.name, request.model, request.key_source, caller, tokens, request.max_tokens
        )

    async def _settle(
        self, reservation: Reservation | None, admitted: _Admitted, caller: Caller
    ) -> None:
        """Charge the turn what it used (a dropped stream what it sent), and settle with that."""
        request = admitted.request
        await self._spending.settle(
            reservation,
            admitted.provider.name,
            request.key_source,
            caller,
            admitted.charged(),
            admitted.started,
        )

    def _cache_key(
        self, provider: ChatProvider, request: GenerationRequest, context: RequestContext
    ) -> str | None:
        """The cache key, or None when this request is not cached (see CACHE_ANY_TEMPERATURE)."""
        if self._cache is None:
            return None
        if request.temperature != 0 and not self._settings.cache_any_temperature:
            return None
        checked = f"{provider.name}|{self._guard.tag}" if self._guard.tag else provider.name
        return ResponseCache.key_for(checked, request, context.caller.owner)

    def _finish(
        self, admitted: _Admitted, generation: Generation, cache: CacheResult | None
    ) -> Outcome:
        request = admitted.request
        admitted.generation = generation
        seconds = time.perf_counter() - admitted.started
        generation_ms = round(seconds * 1000, 1)
        annotate(
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            generation_ms=generation_ms,
        )
        note(generation, self._guard.tag)
        temperature = (
            request.temperature if generation.temperature is None else generation.temperature
        )
        source = KeySource(request.key_source)
        return Outcome(generation, source, temperature, seconds, cache=cache)


async def _prepended(
    first: str | ThoughtDelta | Generation, rest: AsyncIterator[str | ThoughtDelta | Generation]
) -> AsyncIterator[str | ThoughtDelta | Generation]:
    yield first
    async for item in rest:
        yield item


def _within(reserved: Reservation, request: GenerationRequest) -> None:
    """Refuse a turn that grew past what was reserved for it when it was queued.

    Its history is read again when it runs: a conversation that grew meanwhile would otherwise
    spend more than its owner's limits let it reserve.
    """
    tokens = reserve_tokens(request)
    if reserved.held and reserved.tokens and tokens > reserved.tokens:
        raise ConflictException(
            f"The input grew after this background response was queued ({tokens:,} tokens "
            f"at most, {reserved.tokens:,} reserved): queue it again",
            code="input_grew",
            param="input",
        )
