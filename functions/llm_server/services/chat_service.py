"""The chat service: check the request, assemble the prompt, choose provider and key, call it.

Every API (`/api/v1/chat` and the OpenAI-compatible `/v1/...`) becomes a `Turn`, which the
service runs whole (`run`) or streamed (`run_stream`) under the same key policy, concurrency cap,
logging and metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from llm_server.config.settings import Settings
from llm_server.exceptions import (
    AuthenticationException,
    LLMServerException,
    OpenAIClientException,
    ValidationException,
)
from llm_server.providers.base import ChatMessage, ChatProvider, Generation, GenerationRequest
from llm_server.schemas.chat import ChatRequest, ChatResponse
from llm_server.services.api_keys import NO_KEY, KeySource, SelectedKey, select_api_key
from llm_server.services.caller import Caller
from llm_server.services.free_mode import FreeModeQuota, Reservation
from llm_server.services.prompt import compose_system_prompt, parse_history
from llm_server.services.response_cache import ResponseCache
from llm_server.services.server_key import ServerKeyStore
from llm_server.stores.sessions import SessionPage, SessionStore, StoredTurn
from llm_server.utils.concurrency import ConcurrencyLimiter
from llm_server.utils.logging import logger
from llm_server.utils.metrics import record_cache_hit, record_generation
from llm_server.utils.request_context import annotate


@dataclass(frozen=True)
class Turn:
    """One chat turn to run, whichever API it came through.

    `model`, `temperature` and `max_tokens` left None take the DEFAULT_* settings. `key_param`
    names where the caller's key came from, for error messages.
    """

    instructions: str
    messages: tuple[ChatMessage, ...]
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    caller_key: str = ""
    free_mode: bool = False
    key_param: str = "openai_api_key"


@dataclass(frozen=True)
class Outcome:
    """A finished turn: the reply, where its key came from, the temperature used, the time."""

    generation: Generation
    key_source: KeySource
    temperature: float
    seconds: float


class ChatService:
    """Orchestrates chat turns. Providers and the key store are injected, so tests swap them."""

    def __init__(
        self,
        settings: Settings,
        openai: ChatProvider,
        local: ChatProvider,
        server_key: ServerKeyStore,
        sessions: SessionStore | None = None,
        cache: ResponseCache | None = None,
        quota: FreeModeQuota | None = None,
    ) -> None:
        self._settings = settings
        self._openai = openai
        self._local = local
        self._server_key = server_key
        self._sessions = sessions
        self._cache = cache
        self._quota = quota
        self._limiter = ConcurrencyLimiter(
            settings.max_concurrent_requests, settings.per_client_concurrency()
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        openai: ChatProvider | None = None,
        local: ChatProvider | None = None,
        server_key: ServerKeyStore | None = None,
        sessions: SessionStore | None = None,
        quota: FreeModeQuota | None = None,
        cache: ResponseCache | None = None,
    ) -> ChatService:
        """Wire the real providers, key store, session store, quota and cache from settings.

        Anything passed in replaces what the settings would build (tests inject this way).
        """
        from llm_server.providers.local_llama import LocalLlamaProvider
        from llm_server.providers.openai_responses import OpenAIResponsesProvider, RetryPolicy
        from llm_server.stores.factory import quota_store, session_store, shared_cache

        if sessions is None and settings.sessions_enabled:
            sessions = session_store(settings)
        if cache is None and settings.cache_enabled:
            cache = ResponseCache(
                settings.cache_max_entries,
                settings.cache_ttl_seconds,
                shared=shared_cache(settings),
            )

        return cls(
            settings,
            openai=openai
            or OpenAIResponsesProvider(
                base_url=settings.openai_base_url,
                timeout=settings.openai_timeout_seconds,
                retry=RetryPolicy(max_retries=settings.openai_max_retries),
                transport=settings.openai_http_client,
            ),
            local=local
            or LocalLlamaProvider(
                settings.local_model_path, settings.local_context_size, settings.local_threads
            ),
            server_key=server_key or ServerKeyStore(settings),
            sessions=sessions,
            cache=cache,
            quota=quota
            or FreeModeQuota(
                quota_store(settings),
                settings.free_mode_requests_per_minute,
                settings.free_mode_tokens_per_day,
            ),
        )

    async def aclose(self) -> None:
        """Close the providers' connections (at server shutdown)."""
        await self._openai.aclose()
        await self._local.aclose()

    @property
    def local(self) -> ChatProvider:
        """The local-model provider."""
        return self._local

    @property
    def local_model_name(self) -> str | None:
        """The local model's name, as `/v1/models` lists it and a request may ask for it."""
        return self._local.status().get("model")

    def status(self) -> dict[str, Any]:
        """The provider setup, for `/api/v1/system/info`."""
        return {
            "llm_provider": self._settings.llm_provider,
            "server_key_source": self._server_key.source,
            "max_concurrent_requests": self._limiter.limit,
            "requests_in_progress": self._limiter.in_use,
            "providers": {"local": self._local.status(), "openai": self._openai.status()},
        }

    async def chat(self, request: ChatRequest, caller: Caller) -> ChatResponse:
        """Answer one `/api/v1/chat` request, or raise an `LLMServerException` saying why not."""
        outcome = await self.run(await self.turn_for(request, caller), caller)
        await self._remember(caller, request, outcome)
        return self.chat_response(request, outcome)

    async def chat_stream(
        self, request: ChatRequest, caller: Caller
    ) -> AsyncIterator[str | ChatResponse]:
        """Stream one `/api/v1/chat` request: text deltas, then the full `ChatResponse`."""
        async for item in self.run_stream(await self.turn_for(request, caller), caller):
            if isinstance(item, Outcome):
                await self._remember(caller, request, item)
                yield self.chat_response(request, item)
            else:
                yield item

    async def session_page(
        self, caller: Caller, session_id: str, limit: int, after: int | None
    ) -> SessionPage:
        """One page of the caller's session, oldest first: at most `limit` turns after `after`."""
        store = self._session_store()
        return await asyncio.to_thread(store.page, caller.owner, session_id, limit, after)

    async def forget_session(self, caller: Caller, session_id: str) -> int:
        """Erase the caller's session; return how many turns were removed."""
        store = self._session_store()
        return await asyncio.to_thread(store.delete, caller.owner, session_id)

    async def turn_for(self, request: ChatRequest, caller: Caller) -> Turn:
        """Check a chat request's limits and compose its system prompt and messages.

        The conversation is the explicit `conversation_history` when given, else the session's
        stored turns (trimmed to the turn and token budgets), then the new user message.
        """
        annotate(session_id=request.session_id)
        settings = self._settings
        for field, count, limit in (
            ("conversation_history", len(request.conversation_history), settings.max_history_items),
            ("memory_context", len(request.memory_context), settings.max_memory_items),
        ):
            if count > limit:
                raise ValidationException(
                    f"{field} has {count} items; at most {limit} are allowed", param=field
                )
        messages = parse_history(request.conversation_history)
        if not messages and self._sessions and request.session_id:
            messages = await self._stored_history(caller.owner, request.session_id)
        messages.append(ChatMessage("user", request.user_message))
        instructions = compose_system_prompt(
            request.system_message,
            request.role,
            request.memory_context,
            request.instructions,
            settings.default_system_message,
        )
        return Turn(
            instructions=instructions,
            messages=tuple(messages),
            model=request.model,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            caller_key=request.openai_api_key,
            free_mode=request.free_mode,
        )

    async def run(self, turn: Turn, caller: Caller) -> Outcome:
        """Run a turn to completion, or answer it from the response cache.

        A turn on the server's key is admitted by the free-mode quota first, cache hit or not:
        its tokens are reserved now and settled with what it really used.
        """
        provider, request = self._prepare(turn, caller)
        reservation = await self._admit(request, caller)
        used = 0
        try:
            cache, cache_key = self._cache, self._cache_key(provider, request, caller)
            if cache is not None and cache_key is not None:
                cached = await cache.lookup(cache_key)
                annotate(cache="HIT" if cached else "MISS")
                if cached is not None:
                    record_cache_hit()
                    return Outcome(cached, KeySource(request.key_source), request.temperature, 0.0)
            async with self._limiter.slot(caller.owner):
                started = time.perf_counter()
                try:
                    generation = await provider.generate(request)
                except AuthenticationException:
                    raise self._rejected_key(request.key_source, turn.key_param) from None
                used = generation.total_tokens
                if cache is not None and cache_key is not None:
                    await cache.store(cache_key, generation)
                return self._finish(generation, request, started)
        finally:
            await self._settle(reservation, used)

    async def run_stream(self, turn: Turn, caller: Caller) -> AsyncIterator[str | Outcome]:
        """Run a turn streamed: text deltas, then the `Outcome`. Holds a slot until closed.

        A stream the client drops is settled with the input and the deltas produced so far.
        """
        provider, request = self._prepare(turn, caller)
        reservation = await self._admit(request, caller)
        used = 0
        try:
            async with self._limiter.slot(caller.owner):
                started = time.perf_counter()
                stream = provider.stream(request)
                deltas = 0
                try:
                    async for item in stream:
                        if isinstance(item, Generation):
                            used = item.total_tokens
                            yield self._finish(item, request, started)
                        else:
                            deltas += 1
                            yield item
                except AuthenticationException:
                    raise self._rejected_key(request.key_source, turn.key_param) from None
                finally:
                    if not used and deltas:
                        used = (
                            estimate_tokens(request.instructions)
                            + deltas
                            + sum(estimate_tokens(m.content) for m in request.messages)
                        )
                    await stream.aclose()
        finally:
            await self._settle(reservation, used)

    async def _admit(self, request: GenerationRequest, caller: Caller) -> Reservation | None:
        """For a request on the server's key: the quota's reservation for it, or a 429."""
        if request.key_source != KeySource.SERVER or self._quota is None:
            return None
        return await self._quota.admit(caller.owner, reserve_tokens(request))

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
        self, provider: ChatProvider, request: GenerationRequest, caller: Caller
    ) -> str | None:
        """The cache key, or None when this request is not cached (see CACHE_ANY_TEMPERATURE)."""
        if self._cache is None:
            return None
        if request.temperature != 0 and not self._settings.cache_any_temperature:
            return None
        return ResponseCache.key_for(provider.name, request, caller.owner)

    def _session_store(self) -> SessionStore:
        if self._sessions is None:
            raise ValidationException(
                "Sessions are disabled on this server (SESSIONS_ENABLED=false)",
                code="sessions_disabled",
                status_code=404,
            )
        return self._sessions

    async def _stored_history(self, owner: str, session_id: str) -> list[ChatMessage]:
        """The session's recent turns as messages, within SESSION_MAX_TURNS and _MAX_TOKENS."""
        settings = self._settings
        assert self._sessions is not None
        turns = await asyncio.to_thread(
            self._sessions.recent, owner, session_id, settings.session_max_turns
        )
        budget = settings.session_max_tokens
        kept: list[StoredTurn] = []
        for turn in reversed(turns):  # newest first, until the token budget is spent
            budget -= estimate_tokens(turn.user) + estimate_tokens(turn.assistant)
            if budget < 0:
                break
            kept.append(turn)
        messages: list[ChatMessage] = []
        for turn in reversed(kept):
            messages += [ChatMessage("user", turn.user), ChatMessage("assistant", turn.assistant)]
        annotate(session_turns_used=len(kept))
        return messages

    async def _remember(self, caller: Caller, request: ChatRequest, outcome: Outcome) -> None:
        """Store the exchange in its session; a store failure is logged, the answer still sent."""
        if self._sessions is None or not request.session_id:
            return
        generation = outcome.generation
        turn = StoredTurn(
            user=request.user_message,
            assistant=generation.text,
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            created_at=datetime.now(UTC).isoformat(),
        )
        try:
            await asyncio.to_thread(self._sessions.append, caller.owner, request.session_id, turn)
        except Exception:
            logger.exception("could not store the session turn")

    def _prepare(self, turn: Turn, caller: Caller) -> tuple[ChatProvider, GenerationRequest]:
        settings = self._settings
        if turn.max_tokens is not None and turn.max_tokens > settings.max_tokens_limit:
            raise ValidationException(
                f"max_tokens must be between 1 and {settings.max_tokens_limit}", param="max_tokens"
            )
        provider, key = self._route(turn, caller)
        annotate(provider=provider.name, api_key_source=key.source.value)
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
        )
        return provider, request

    def _route(self, turn: Turn, caller: Caller) -> tuple[ChatProvider, SelectedKey]:
        """Choose the provider (LLM_PROVIDER, or the local model by name) and the key.

        The server's key is only for callers the server knows (see `Caller.known`).
        """
        mode = self._settings.llm_provider
        if mode == "local" or (
            mode == "auto" and turn.model and turn.model == self.local_model_name
        ):
            return self._local, NO_KEY
        free_mode = turn.free_mode and self._settings.free_mode_enabled
        key = select_api_key(
            turn.caller_key, free_mode, self._server_key_for(caller), turn.key_param
        )
        if key.source is not KeySource.NONE:
            return self._openai, key
        if mode == "auto":
            return self._local, NO_KEY
        raise AuthenticationException(
            f"An OpenAI API key is required: send {turn.key_param}, or use free mode to use the "
            "server's key" + self._free_mode_note(),
            code="missing_api_key",
            param=turn.key_param,
        )

    def _server_key_for(self, caller: Caller) -> Callable[[], SecretStr | None]:
        """The server key's getter, or one that refuses a caller the server does not know."""
        if caller.known:
            return self._server_key.get

        def refuse() -> SecretStr | None:
            if not self._server_key.configured:
                return None  # nothing to refuse: the usual "no key" answer follows
            raise AuthenticationException(
                caller.free_mode_refusal, code="client_credential_required", param="X-Api-Key"
            )

        return refuse

    def _free_mode_note(self) -> str:
        if not self._settings.free_mode_enabled:
            return " (free mode is switched off on this server)"
        return "" if self._server_key.configured else " (this server has none configured)"

    @staticmethod
    def _rejected_key(source: str, key_param: str) -> LLMServerException:
        if source != KeySource.SERVER:
            return AuthenticationException(
                f"OpenAI rejected the key you sent in {key_param}", param=key_param
            )
        # Not the caller's fault: the server's own key is bad. Say so loudly, answer 502.
        logger.error("the server's default OpenAI key was rejected upstream")
        return OpenAIClientException(
            "The server's OpenAI key was rejected upstream; the operator has to fix it",
            code="server_key_rejected",
        )

    @staticmethod
    def _finish(generation: Generation, request: GenerationRequest, started: float) -> Outcome:
        seconds = time.perf_counter() - started
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
        return Outcome(generation, KeySource(request.key_source), temperature, seconds)

    @staticmethod
    def chat_response(request: ChatRequest, outcome: Outcome) -> ChatResponse:
        """The `/api/v1/chat` response for a finished turn."""
        generation = outcome.generation
        return ChatResponse(
            session_id=request.session_id,
            response_text=generation.text,
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            total_tokens_used=generation.total_tokens,
            output_format=generation.output_format,
            created_at=generation.created_at,
            temperature=outcome.temperature,
            instructions=request.instructions,
            response_time=round(outcome.seconds, 4),
            success=True,
            api_key_source=outcome.key_source.value,
        )


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate for history budgets: about 4 UTF-8 bytes a token."""
    return max(1, len(text.encode()) // 4)


def reserve_tokens(request: GenerationRequest) -> int:
    """What a free-mode request may cost at most, reserved from the daily quota at admission.

    Input: 2 UTF-8 bytes a token, on the safe side for English (about 4) and Korean (about 3 a
    syllable, a token or two each); output: `max_tokens`. Settled with the real usage after.
    """
    texts = [request.instructions, *(m.content for m in request.messages)]
    return sum(len(text.encode()) for text in texts) // 2 + len(texts) + request.max_tokens
