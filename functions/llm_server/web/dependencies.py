"""FastAPI dependencies every API shares: the runner, settings, the caller and its context.

Taken from the app so tests can swap them. What only one API uses (its sessions, its stored
responses) is that API's own dependency, beside its routes. Async functions: FastAPI would run
plain ones in a thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from llm_server.config.settings import Settings
from llm_server.core.caller import Caller
from llm_server.core.runner import TurnRunner
from llm_server.core.turn import RequestContext
from llm_server.utils.request_context import annotate


async def get_runner(request: Request) -> TurnRunner:
    """The app's turn runner."""
    runner: TurnRunner = request.app.state.services.runner
    return runner


async def get_app_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_caller(request: Request) -> Caller:
    """Who is calling (see `web/identity.py`); 401 for a refused or required credential.

    Identified once a request (a route may ask before its body is read, then again).
    """
    return await identified(request, dict(request.headers.raw))


async def identified(request: Request, headers: dict[bytes, bytes]) -> Caller:
    """The caller as `headers` identify it, once a request (an API may read its own header)."""
    state = request.state
    caller: Caller | None = getattr(state, "caller", None)
    if caller is None:
        caller = await request.app.state.identity.identify(request.scope, headers)
        annotate(client=caller.owner)
        state.caller = caller
    return caller


async def get_request_context(
    request: Request, caller: Annotated[Caller, Depends(get_caller)]
) -> RequestContext:
    """The caller, the request's deadline (on Lambda) and its id, as the middleware found them."""
    state = request.state
    return RequestContext(
        caller, getattr(state, "deadline", None), getattr(state, "request_id", "")
    )
