"""Apps as a hostile-tenant test needs them: on the server key, with a known store and clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

import openai
from helpers.fakes import FailingProvider
from helpers.stores import settings_and_stores
from llm_server.app import Services, create_app
from llm_server.core.free_mode import FreeModeQuota
from llm_server.core.response_cache import ResponseCache
from llm_server.core.server_key import ServerKeyStore
from llm_server.stores.factory import (
    background_store,
    conversation_store,
    key_store,
    quota_store,
    response_store,
    usage_store,
)
from llm_server.stores.shared_cache import DynamoDBSharedCache
from llm_server.usage.ledger import UsageLedger

SERVER_KEY = "sk-free-server-" + "s" * 40
CALLER_KEY = "sk-tenant-caller-" + "c" * 40


def tenant_app(
    kind,
    moto_endpoint,
    fake,
    *,
    shared=None,
    clock: Callable[[], float] = time.time,
    local=None,
    bedrock=None,
    **overrides: Any,
):
    """An app on the server key (free mode) over `fake`; `shared` reuses another's stores.

    Returns the app and (settings, sessions, guard, dynamodb client) to share with a second one.
    """
    if shared is None:
        overrides.setdefault("openai_base_url", fake.url if fake else None)
        overrides.setdefault("openai_api_key", SERVER_KEY)
        overrides.setdefault("llm_provider", "openai")
        shared = (*settings_and_stores(kind, moto_endpoint, **overrides),)
    settings, sessions, guard = shared
    client = getattr(sessions, "client", None)  # the DynamoDB stores share their moto client
    quota = FreeModeQuota(
        quota_store(settings, client),
        settings.free_mode_requests_per_minute,
        settings.free_mode_tokens_per_day,
        clock=clock,
    )
    cache = None
    if settings.cache_enabled:
        tier = DynamoDBSharedCache(settings.dynamodb_table, 300, client) if client else None
        cache = ResponseCache(100, 300, shared=tier)
    service = Services.from_settings(
        settings,
        local=local or FailingProvider(AssertionError("no local model here"), name="local"),
        bedrock=bedrock,
        server_key=ServerKeyStore(settings),
        sessions=sessions,
        responses=response_store(settings, client),
        quota=quota,
        cache=cache,
        usage=UsageLedger.from_settings(settings, usage_store(settings, client)),
        keys=key_store(settings, client),
        conversation_store=conversation_store(settings, client),
        background_store=background_store(settings, client),
    )
    app = create_app(settings, service)
    app.state.idempotency = guard
    return app, shared


def tenant_sdk(server, client: str = "client-1", sdk: type = openai.OpenAI) -> Any:
    """The OpenAI SDK (`sdk`: `openai.AsyncOpenAI` for the async one) as tenant `client`.

    Its `X-Api-Key` names the tenant (the owner of what it stores); the bearer is CALLER_KEY.
    """
    return sdk(
        base_url=f"{server.url}/v1",
        api_key=CALLER_KEY,
        max_retries=0,
        default_headers={"X-Api-Key": client},
    )


def post_chat(server, client: str | None = "client-1", headers=None, **fields) -> httpx.Response:
    """`POST /api/v1/chat` as the client whose `X-Api-Key` is `client` (None: anonymous)."""
    headers = {**({"X-Api-Key": client} if client else {}), **(headers or {})}
    body = {"user_message": "hello", **fields}
    return httpx.post(f"{server.url}/api/v1/chat", json=body, headers=headers, timeout=30)


def sent_messages(fake, index: int = -1) -> list[tuple[str, str]]:
    """The conversation the upstream received in request `index`."""
    return [(m["role"], m["content"]) for m in fake.seen[index].body["input"]]
