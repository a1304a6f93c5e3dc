"""Every provider the server can run, by name, and how the settings build each.

A new provider is a module or package under `providers/` and one entry in `BUILDERS`; the turn
core routes to it by the models it lists (`ChatProvider.models`) and bills it by its `payer`.
Each builder imports its provider's module itself, so a server that never builds one never
loads it (cold start).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llm_server.config.settings import Settings
from llm_server.providers.base import ChatProvider


def _local(settings: Settings) -> ChatProvider:
    from llm_server.providers.local_llama import LocalLlamaProvider

    return LocalLlamaProvider(
        settings.local_model_path,
        settings.local_context_size,
        settings.local_threads,
        settings.local_generation_timeout_seconds,
    )


def _openai(settings: Settings) -> ChatProvider:
    from llm_server.providers.openai import OpenAIResponsesProvider, RetryPolicy

    return OpenAIResponsesProvider(
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        retry=RetryPolicy(max_retries=settings.openai_max_retries),
        transport=settings.openai_http_client,
    )


def _bedrock(settings: Settings) -> ChatProvider:
    from llm_server.providers.bedrock.provider import BedrockProvider

    return BedrockProvider(
        settings.bedrock_model_list(),
        region=settings.bedrock_region,
        timeout=settings.bedrock_timeout_seconds,
        prompt_caching=settings.bedrock_prompt_caching,
        max_connections=settings.max_concurrent_requests,
        guardrail=settings.guardrail(),
    )


def _bedrock_id(model: str) -> bool:
    from llm_server.providers.bedrock.models import is_bedrock_id

    return is_bedrock_id(model)


@dataclass(frozen=True)
class Entry:
    """A provider the server can run: whether the settings switch it on, how to build it.

    `claims` says which model names are its kind: a request naming one it does not list is
    refused, never sent on to another provider.
    """

    enabled: Callable[[Settings], bool]
    build: Callable[[Settings], ChatProvider]
    claims: Callable[[str], bool] = lambda model: False


BUILDERS: dict[str, Entry] = {
    # LLM_PROVIDER=local switches OpenAI off, =openai the local model; auto runs both.
    "local": Entry(lambda settings: settings.llm_provider != "openai", _local),
    "openai": Entry(lambda settings: settings.llm_provider != "local", _openai),
    "bedrock": Entry(lambda settings: bool(settings.bedrock_model_list()), _bedrock, _bedrock_id),
}
"""name → entry. Routing asks the providers in this order for a model by name."""


def build_providers(
    settings: Settings, given: Mapping[str, ChatProvider | None]
) -> dict[str, ChatProvider]:
    """The providers the settings switch on, by name; one `given` replaces what it would build."""
    return {
        name: given.get(name) or entry.build(settings)
        for name, entry in BUILDERS.items()
        if entry.enabled(settings)
    }


def claimed_by(model: str) -> str | None:
    """The provider whose kind of name `model` is (a Bedrock model id...), if any."""
    return next((name for name, entry in BUILDERS.items() if entry.claims(model)), None)
