"""FastAPI dependencies: the objects routes use, taken from the app so tests can swap them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from llm_server.config.settings import Settings
from llm_server.services.caller import Caller
from llm_server.services.chat_service import ChatService
from llm_server.utils.request_context import annotate

if TYPE_CHECKING:  # imported on first use: Powertools' idempotency package loads boto3
    from llm_server.services.idempotency import IdempotencyGuard


async def get_chat_service(request: Request) -> ChatService:
    """The app's chat service (async: FastAPI would run a plain function in a thread)."""
    return request.app.state.chat_service


async def get_app_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


async def get_caller(request: Request) -> Caller:
    """Who is calling (see `api/identity.py`); 401 for a refused or required credential."""
    caller = request.app.state.identity.identify(request.scope, dict(request.headers.raw))
    annotate(client=caller.owner)
    return caller


def get_idempotency_guard(request: Request) -> IdempotencyGuard:
    """The app's idempotency guard, built on first use (its store may need boto3)."""
    guard = getattr(request.app.state, "idempotency", None)
    if guard is None:
        from llm_server.services.idempotency import IdempotencyGuard
        from llm_server.stores.factory import idempotency_layer

        settings = request.app.state.settings
        guard = IdempotencyGuard(idempotency_layer(settings), settings.idempotency_ttl_seconds)
        request.app.state.idempotency = guard
    return guard
