"""OpenAI's Responses API (`client.responses.create`) through the official SDK.

`base_url` points it at any server that speaks the Responses API. The SDK is imported on first
use only, so a cold start that never reaches OpenAI does not pay for it.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llm_server.exceptions import (
    AuthenticationException,
    ConfigurationException,
    LLMServerException,
    OpenAIClientException,
    PermissionException,
    RateLimitException,
    UpstreamTimeoutException,
    ValidationException,
)
from llm_server.providers.base import Generation, GenerationRequest
from llm_server.utils.redact import key_fingerprint, redact_keys

if TYPE_CHECKING:
    from openai import APIError, AsyncOpenAI
    from openai.types.responses import Response


class OpenAIResponsesProvider:
    """Chat through `responses.create`, with one pooled SDK client per key."""

    name = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 25.0,
        max_retries: int = 2,
        max_clients: int = 64,
    ) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_clients = max_clients
        self._clients: OrderedDict[str, AsyncOpenAI] = OrderedDict()

    def status(self) -> dict[str, Any]:
        """Where requests go, and how many keys have a warm client."""
        return {
            "base_url": self._base_url or "https://api.openai.com/v1",
            "timeout_seconds": self._timeout,
            "max_retries": self._max_retries,
            "pooled_clients": len(self._clients),
        }

    async def generate(self, request: GenerationRequest) -> Generation:
        """Call the Responses API and map its reply, or its error, to ours."""
        if request.api_key is None:
            raise ConfigurationException("The OpenAI provider was called without an API key")
        import openai

        client = self._client_for(request.api_key.get_secret_value())
        try:
            response = await client.responses.create(
                model=request.model,
                input=[{"role": m.role, "content": m.content} for m in request.messages],
                instructions=request.instructions,
                temperature=request.temperature,
                max_output_tokens=request.max_tokens,
            )
        except openai.APIError as exc:
            raise map_openai_error(exc) from None
        return _to_generation(response)

    def _client_for(self, key: str) -> AsyncOpenAI:
        """Reuse a client per key (so a warm container keeps its connections), LRU-bounded."""
        fingerprint = key_fingerprint(key)
        client = self._clients.get(fingerprint)
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(
                api_key=key,
                base_url=self._base_url,
                timeout=self._timeout,
                max_retries=self._max_retries,
            )
            self._clients[fingerprint] = client
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
        self._clients.move_to_end(fingerprint)
        return client


def _to_generation(response: Response) -> Generation:
    usage = response.usage
    text_format = getattr(getattr(response, "text", None), "format", None)
    return Generation(
        text=response.output_text,
        model=response.model,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        output_format=getattr(text_format, "type", None) or "text",
        created_at=datetime.fromtimestamp(response.created_at, tz=UTC),
    )


def map_openai_error(exc: APIError) -> LLMServerException:
    """Translate an SDK error into ours; upstream wording is kept, key fragments are not."""
    import openai

    reason = redact_keys(getattr(exc, "message", "") or str(exc))
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeoutException("The model provider did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return OpenAIClientException(
            "Could not connect to the model provider", code="upstream_unreachable"
        )
    if isinstance(exc, openai.AuthenticationError):
        return AuthenticationException(
            "The model provider rejected the API key", code="invalid_api_key"
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return PermissionException(f"The model provider refused the request: {reason}")
    if isinstance(exc, openai.RateLimitError):
        return RateLimitException(
            f"The model provider is rate limiting: {reason}", retry_after=_retry_after(exc)
        )
    if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
        return ValidationException(
            f"The model provider rejected the request: {reason}",
            code="upstream_bad_request",
            status_code=400,
        )
    return OpenAIClientException(f"The model provider failed: {reason}")


def _retry_after(exc: APIError) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
