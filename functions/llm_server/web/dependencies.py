"""FastAPI dependencies: the objects routes use, taken from the app so tests can swap them.

Async functions: FastAPI would run plain ones in a thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from llm_server.config.settings import Settings
from llm_server.core.caller import Caller
from llm_server.core.runner import TurnRunner
from llm_server.core.turn import RequestContext
from llm_server.native_api.conversation import Conversations
from llm_server.openai_api.stored import ResponseArchive
from llm_server.utils.request_context import annotate

if TYPE_CHECKING:  # imported on first use: Powertools' idempotency package loads boto3
    from llm_server.native_api.idempotency import IdempotencyGuard


async def get_runner(request: Request) -> TurnRunner:
    """The app's turn runner."""
    runner: TurnRunner = request.app.state.services.runner
    return runner


async def get_conversations(request: Request) -> Conversations:
    """The native API's conversations (its sessions)."""
    conversations: Conversations = request.app.state.services.conversations
    return conversations


async def get_archive(request: Request) -> ResponseArchive:
    """The Responses API's stored responses."""
    archive: ResponseArchive = request.app.state.services.responses
    return archive


async def get_app_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_caller(request: Request) -> Caller:
    """Who is calling (see `web/identity.py`); 401 for a refused or required credential."""
    caller: Caller = request.app.state.identity.identify(request.scope, dict(request.headers.raw))
    annotate(client=caller.owner)
    return caller


async def get_request_context(
    request: Request, caller: Annotated[Caller, Depends(get_caller)]
) -> RequestContext:
    """The caller, the request's deadline (on Lambda) and its id, as the middleware found them."""
    state = request.state
    return RequestContext(
        caller, getattr(state, "deadline", None), getattr(state, "request_id", "")
    )


def get_idempotency_guard(request: Request) -> IdempotencyGuard:
    """The app's idempotency guard, built on first use (its store may need boto3)."""
    guard: IdempotencyGuard | None = getattr(request.app.state, "idempotency", None)
    if guard is None:
        from llm_server.native_api.idempotency import IdempotencyGuard
        from llm_server.stores.factory import idempotency_layer

        settings = request.app.state.settings
        guard = IdempotencyGuard(idempotency_layer(settings), settings.idempotency_ttl_seconds)
        request.app.state.idempotency = guard
    return guard
