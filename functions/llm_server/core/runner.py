"""Run a turn, whole or streamed: routing, key choice, free-mode quota, cache and concurrency.

Both ways go through one admission sequence (`_admitted`): choose the provider and key, take a
concurrency slot (and start the timer), read the stored conversation the turn continues, admit
by the free-mode quota (reserving tokens for all of it); a key the provider rejects is remapped
to say whose key it was, and the reservation is settled with what was really used, whatever
happens (a dropped stream included).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from llm_server.config.settings import Settings
from llm_server.core.free_mode import FreeModeQuota, Reservation, reserve_tokens
from llm_server.core.keys import KeySource
from llm_server.core.response_cache import ResponseCache
from llm_server.core.routing import Routing, rejected_key
from llm_server.core.server_key import ServerKeyStore
from llm_server.core.turn import CacheResult, Outcome, RequestContext, Turn
from llm_server.exceptions import (
    AuthenticationException,
    BadRequestException,
    ValidationException,
)
from llm_server.providers.base import ChatProvider
from llm_server.utils.concurrency import ConcurrencyLimiter
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_cache_hit, record_generation
from llm_server.utils.request_context import annotate
from llm_server.values import ChatMessage, Generation, GenerationRequest


@dataclass
class _Admitted:
    """A turn past admission: its provider and request, and what it has produced so far.

    `used` is the finished reply's tokens; until there is one, `deltas` counts the streamed
    pieces, so a stream cut short is charged its input and what it sent.
    """

    provider: ChatProvider
    request: GenerationRequest
    started: float = 0.0
    used: int = 0
    deltas: int = 0

    def spent(self) -> int:
        """The tokens to settle the reservation with."""
        if self.used or not self.deltas:
            return self.used
        return reserve_tokens(self.request, output=self.deltas)


class TurnRunner:
    """Runs turns for every API. Providers, key store, cache and quota are injected."""

    def __init__(
        self,
        settings: Settings,
        openai: ChatProvider,
        local: ChatProvider,
        server_key: ServerKeyStore,
        cache: ResponseCache | None = None,
        quota: FreeModeQuota | None = None,
    ) -> None:
        self._settings = settings
        self._openai = openai
        self._local = local
        self._server_key = server_key
        self._cache = cache
        self._quota = quota
        self._routing = Routing(settings, openai, local, server_key)
        self._limiter = ConcurrencyLimiter(
            settings.max_concurrent_requests, settings.per_client_concurrency()
        )

    async def aclose(self) -> None:
        """Close the providers' connections (at server shutdown)."""
        await self._openai.aclose()
        await self._local.aclose()

    async def warm_up(self) -> None:
        """Load what the configured providers load lazily (the local model), before traffic."""
        if self._settings.llm_provider != "openai":
            await self._local.warm_up()

    def prime(self) -> None:
        """Load what a first chat would load on its path (Lambda, init ahead of traffic)."""
        self._openai.prime()
        self._local.prime()
        self._server_key.prime()

    def renew(self) -> None:
        """Forget clients, connections and the cached server key (after a SnapStart restore)."""
        self._openai.renew()
        self._local.renew()
        self._server_key.renew()

    def models(self) -> list[tuple[str, str]]:
        """(model, owner) pairs a request may name: the local model's and the OpenAI ones."""
        settings = self._settings
        names: list[tuple[str, str]] = []
        if settings.llm_provider != "openai":
            names += [(name, "llm-server") for name in self._local.models()]
        if settings.llm_provider != "local":
            for name in dict.fromkeys([settings.default_model, *settings.openai_model_list()]):
                names.append((name, "openai"))
        return names

    def status(self) -> dict[str, Any]:
        """The provider setup, for `/api/v1/system/info`."""
        return {
            "llm_provider": self._settings.llm_provider,
            "server_key_source": self._server_key.source,
            "max_concurrent_requests": self._limiter.limit,
            "requests_in_progress": self._limiter.in_use,
            "providers": {"local": self._local.status(), "openai": self._openai.status()},
        }

    async def run(self, turn: Turn, context: RequestContext) -> Outcome:
        """Run a turn to completion, or answer it from the response cache.

        A turn on the server's key is admitted by the free-mode quota first, cache hit or not.
        """
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
            generation = await admitted.provider.generate(request)
            if self._cache is not None and key is not None:
                await self._cache.store(key, generation)
            return self._finish(admitted, generation, "MISS" if key is not None else None)

    async def stream(
        self, turn: Turn, context: RequestContext
    ) -> AsyncGenerator[str | Outcome, None]:
        """Run a turn streamed: text deltas, then the `Outcome`. Holds a slot until closed.

        A stream the client drops is settled with its input and the deltas produced so far.
        """
        async with self._admitted(turn, context) as admitted:
            stream = admitted.provider.stream(admitted.request)
            try:
                async for item in stream:
                    if isinstance(item, Generation):
                        yield self._finish(admitted, item, None)
                    else:
                        admitted.deltas += 1
                        yield item
            finally:
                await stream.aclose()

    @asynccontextmanager
    async def _admitted(self, turn: Turn, context: RequestContext) -> AsyncIterator[_Admitted]:
        """Route and key, a slot, the earlier messages, quota; remap and settle on the way out."""
        provider, request = self._prepare(turn, context)
        async with self._limiter.slot(context.caller.owner):
            started = time.perf_counter()
            if turn.earlier is not None:
                earlier = await turn.earlier()
                _readable(provider, earlier)
                request = replace(request, messages=earlier + request.messages)
            reservation = await self._admit(request, context)
            admitted = _Admitted(provider, request, started)
            try:
                yield admitted
            except AuthenticationException:
                raise rejected_key(request.key_source) from None
            finally:
                await self._settle(reservation, admitted.spent())

    async def _admit(
        self, request: GenerationRequest, context: RequestContext
    ) -> Reservation | None:
        """For a request on the server's key: the quota's reservation for it, or a 429."""
        if request.key_source != KeySource.SERVER or self._quota is None:
            return None
        return await self._quota.admit(context.caller.owner, reserve_tokens(request))

    async def _settle(self, reservation: Reservation | None, used: int) -> None:
        """Replace a reservation by the tokens really used, even when the request is cancelled."""
        if reservation is None or self._quota is None:
            return
        import anyio

        with anyio.CancelScope(shield=True):
            try:
                await self._quota.settle(reservation, used)
            except Exception:
                logger.exception("could not settle the free-mode token reservation")

    def _cache_key(
        self, provider: ChatProvider, request: GenerationRequest, context: RequestContext
    ) -> str | None:
        """The cache key, or None when this request is not cached (see CACHE_ANY_TEMPERATURE)."""
        if self._cache is None:
            return None
        if request.temperature != 0 and not self._settings.cache_any_temperature:
            return None
        return ResponseCache.key_for(provider.name, request, context.caller.owner)

    def _prepare(
        self, turn: Turn, context: RequestContext
    ) -> tuple[ChatProvider, GenerationRequest]:
        settings = self._settings
        if turn.max_tokens is not None and turn.max_tokens > settings.max_tokens_limit:
            raise ValidationException(
                f"max_tokens must be between 1 and {settings.max_tokens_limit}", param="max_tokens"
            )
        provider, key = self._routing.route(turn, context)
        annotate(provider=provider.name, api_key_source=key.source.value)
        _readable(provider, turn.messages)
        for name in turn.options.chosen():
            if name not in provider.honours:
                raise BadRequestException(
                    f"{name} is not supported by the {provider.name} provider",
                    param=name,
                    code="unsupported_parameter",
                )
        request = GenerationRequest(
            instructions=turn.instructions,
            messages=turn.messages,
            model=turn.model or settings.default_model,
            temperature=settings.default_temperature
            if turn.temperature is None
            else turn.temperature,
            max_tokens=turn.max_tokens or settings.default_max_tokens,
            api_key=key.value,
            key_source=key.source.value,
            deadline=context.deadline,
            options=turn.options,
        )
        return provider, request

    @staticmethod
    def _finish(admitted: _Admitted, generation: Generation, cache: CacheResult | None) -> Outcome:
        request = admitted.request
        admitted.used = generation.total_tokens
        seconds = time.perf_counter() - admitted.started
        generation_ms = round(seconds * 1000, 1)
        annotate(
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            generation_ms=generation_ms,
        )
        record_generation(
            generation.model,
            request.key_source,
            generation_ms,
            generation.input_tokens,
            generation.output_tokens,
        )
        temperature = (
            request.temperature if generation.temperature is None else generation.temperature
        )
        source = KeySource(request.key_source)
        return Outcome(generation, source, temperature, seconds, cache=cache)


def _readable(provider: ChatProvider, messages: tuple[ChatMessage, ...]) -> None:
    """Refuse images for a provider that reads text only."""
    if "images" not in provider.honours and any(m.images for m in messages):
        raise BadRequestException(
            f"The {provider.name} model reads text only: images are not supported there",
            param="image_url",
            code="unsupported_content",
        )
