"""The chat service: check the request, assemble the prompt, choose provider and key, call it."""

from __future__ import annotations

import time
from typing import Any

from llm_server.config.settings import Settings
from llm_server.exceptions import (
    AuthenticationException,
    OpenAIClientException,
    ValidationException,
)
from llm_server.providers.base import ChatMessage, ChatProvider, Generation, GenerationRequest
from llm_server.schemas.chat import ChatRequest, ChatResponse
from llm_server.services.api_keys import NO_KEY, KeySource, SelectedKey, select_api_key
from llm_server.services.prompt import compose_system_prompt, parse_history
from llm_server.services.server_key import ServerKeyStore
from llm_server.utils.concurrency import ConcurrencyLimiter
from llm_server.utils.logging import logger
from llm_server.utils.metrics import record_generation
from llm_server.utils.request_context import annotate


class ChatService:
    """Orchestrates one chat turn. Providers and the key store are injected, so tests swap them."""

    def __init__(
        self,
        settings: Settings,
        openai: ChatProvider,
        local: ChatProvider,
        server_key: ServerKeyStore,
    ) -> None:
        self._settings = settings
        self._openai = openai
        self._local = local
        self._server_key = server_key
        self._limiter = ConcurrencyLimiter(settings.max_concurrent_requests)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        openai: ChatProvider | None = None,
        local: ChatProvider | None = None,
        server_key: ServerKeyStore | None = None,
    ) -> ChatService:
        """Wire the real providers and key store from settings, except those passed in."""
        from llm_server.providers.local_llama import LocalLlamaProvider
        from llm_server.providers.openai_responses import OpenAIResponsesProvider, RetryPolicy

        return cls(
            settings,
            openai=openai
            or OpenAIResponsesProvider(
                base_url=settings.openai_base_url,
                timeout=settings.openai_timeout_seconds,
                retry=RetryPolicy(max_retries=settings.openai_max_retries),
            ),
            local=local
            or LocalLlamaProvider(
                settings.local_model_path, settings.local_context_size, settings.local_threads
            ),
            server_key=server_key or ServerKeyStore(settings),
        )

    @property
    def local(self) -> ChatProvider:
        """The local-model provider."""
        return self._local

    def status(self) -> dict[str, Any]:
        """The provider setup, for `/api/v1/system/info`."""
        return {
            "llm_provider": self._settings.llm_provider,
            "server_key_source": self._server_key.source,
            "max_concurrent_requests": self._limiter.limit,
            "requests_in_progress": self._limiter.in_use,
            "providers": {"local": self._local.status(), "openai": self._openai.status()},
        }

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Answer one chat request, or raise an `LLMServerException` saying why not."""
        annotate(session_id=request.session_id)
        self._check_limits(request)
        provider, key = self._route(request)
        generation_request = self._generation_request(request, key)
        annotate(provider=provider.name, api_key_source=key.source.value)
        started = time.perf_counter()
        async with self._limiter.slot():
            generation = await self._generate(provider, generation_request, key)
        elapsed = time.perf_counter() - started
        generation_ms = round(elapsed * 1000, 1)
        annotate(
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            generation_ms=generation_ms,
        )
        record_generation(
            generation.model,
            key.source.value,
            generation_ms,
            generation.input_tokens,
            generation.output_tokens,
        )
        return self._response(request, generation_request, generation, key, elapsed)

    def _check_limits(self, request: ChatRequest) -> None:
        limits = (
            (
                "conversation_history",
                len(request.conversation_history),
                self._settings.max_history_items,
            ),
            ("memory_context", len(request.memory_context), self._settings.max_memory_items),
        )
        for field, count, limit in limits:
            if count > limit:
                raise ValidationException(
                    f"{field} has {count} items; at most {limit} are allowed", param=field
                )
        if request.max_tokens is not None and request.max_tokens > self._settings.max_tokens_limit:
            raise ValidationException(
                f"max_tokens must be between 1 and {self._settings.max_tokens_limit}",
                param="max_tokens",
            )

    def _route(self, request: ChatRequest) -> tuple[ChatProvider, SelectedKey]:
        """Choose the provider (LLM_PROVIDER) and the key (free mode rules)."""
        mode = self._settings.llm_provider
        if mode == "local":
            return self._local, NO_KEY
        key = select_api_key(request.openai_api_key, request.free_mode, self._server_key.get)
        if key.source is not KeySource.NONE:
            return self._openai, key
        if mode == "auto":
            return self._local, NO_KEY
        raise AuthenticationException(
            "An OpenAI API key is required: send openai_api_key, or set free_mode to use the "
            "server's key"
            + ("" if self._server_key.configured else " (this server has none configured)"),
            code="missing_api_key",
            param="openai_api_key",
        )

    def _generation_request(self, request: ChatRequest, key: SelectedKey) -> GenerationRequest:
        settings = self._settings
        messages = parse_history(request.conversation_history)
        messages.append(ChatMessage("user", request.user_message))
        return GenerationRequest(
            instructions=compose_system_prompt(
                request.system_message,
                request.role,
                request.memory_context,
                request.instructions,
                settings.default_system_message,
            ),
            messages=tuple(messages),
            model=request.model or settings.default_model,
            temperature=(
                settings.default_temperature if request.temperature is None else request.temperature
            ),
            max_tokens=request.max_tokens or settings.default_max_tokens,
            api_key=key.value,
            key_source=key.source.value,
        )

    async def _generate(
        self, provider: ChatProvider, request: GenerationRequest, key: SelectedKey
    ) -> Generation:
        try:
            return await provider.generate(request)
        except AuthenticationException:
            if key.source is not KeySource.SERVER:
                raise AuthenticationException(
                    "OpenAI rejected the openai_api_key you sent", param="openai_api_key"
                ) from None
            # Not the caller's fault: the server's own key is bad. Say so loudly, answer 502.
            logger.error("the server's default OpenAI key was rejected upstream")
            raise OpenAIClientException(
                "The server's OpenAI key was rejected upstream; the operator has to fix it",
                code="server_key_rejected",
            ) from None

    @staticmethod
    def _response(
        request: ChatRequest,
        sent: GenerationRequest,
        generation: Generation,
        key: SelectedKey,
        elapsed: float,
    ) -> ChatResponse:
        return ChatResponse(
            session_id=request.session_id,
            response_text=generation.text,
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            total_tokens_used=generation.total_tokens,
            output_format=generation.output_format,
            created_at=generation.created_at,
            temperature=sent.temperature
            if generation.temperature is None
            else generation.temperature,
            instructions=request.instructions,
            response_time=round(elapsed, 4),
            success=True,
            api_key_source=key.source.value,
        )
