"""The composition root: build the services from settings, and the FastAPI app around them.

The same app serves locally (uvicorn) and on Lambda (Mangum). Everything a test may replace
(providers, key store, stores, quota, cache) is a keyword of `Services.from_settings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from llm_server import __version__
from llm_server.config.settings import Settings, get_settings
from llm_server.core.free_mode import FreeModeQuota
from llm_server.core.response_cache import ResponseCache
from llm_server.core.runner import TurnRunner
from llm_server.core.server_key import ServerKeyStore
from llm_server.native_api import routes as native_routes
from llm_server.native_api import usage as usage_routes
from llm_server.native_api.conversation import Conversations
from llm_server.native_api.errors import NATIVE_ERRORS
from llm_server.openai_api import errors as openai_errors
from llm_server.openai_api import legacy as legacy_routes
from llm_server.openai_api import routes as openai_routes
from llm_server.openai_api import stored_routes
from llm_server.openai_api.stored import ResponseArchive
from llm_server.providers.base import ChatProvider
from llm_server.stores.responses import ResponseStore
from llm_server.stores.sessions import SessionStore
from llm_server.usage.ledger import UsageLedger
from llm_server.utils.after_answer import AfterAnswer
from llm_server.utils.log import configure_logging
from llm_server.web import pages, system
from llm_server.web.errors import ErrorShapes, install_error_handlers
from llm_server.web.identity import IdentityPolicy
from llm_server.web.middleware import RequestContextMiddleware
from llm_server.web.snapstart import add_snapstart_hooks


@dataclass(frozen=True)
class Services:
    """What the routes use: the runner, conversations, stored responses, the usage ledger."""

    runner: TurnRunner
    conversations: Conversations
    responses: ResponseArchive
    usage: UsageLedger

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        server_key: ServerKeyStore | None = None,
        sessions: SessionStore | None = None,
        responses: ResponseStore | None = None,
        quota: FreeModeQuota | None = None,
        cache: ResponseCache | None = None,
        usage: UsageLedger | None = None,
        after_answer: AfterAnswer | None = None,
        **providers: ChatProvider | None,
    ) -> Services:
        """Wire the real providers, key store, session store, quota and cache from settings.

        Anything passed in replaces what the settings would build (tests inject this way); a
        provider by its name in `providers/registry.py` (`local=`, `openai=`, `bedrock=`).
        `after_answer` (Lambda's extension) takes the ledger's and quota's writes that can wait
        for the answer to have gone.
        """
        from llm_server.providers.registry import build_providers
        from llm_server.stores.factory import (
            quota_store,
            response_store,
            session_limits,
            session_store,
            shared_cache,
            usage_store,
        )

        if sessions is None and settings.sessions_enabled:
            sessions = session_store(settings)
        if responses is None and settings.sessions_enabled:
            responses = response_store(settings)
        if cache is None and settings.cache_enabled:
            cache = ResponseCache(
                settings.cache_max_entries,
                settings.cache_ttl_seconds,
                shared=shared_cache(settings),
            )
        usage = usage or UsageLedger.from_settings(settings, usage_store(settings), after_answer)
        runner = TurnRunner(
            settings,
            build_providers(settings, providers),
            server_key=server_key or ServerKeyStore(settings),
            cache=cache,
            quota=quota
            or FreeModeQuota(
                quota_store(settings),
                settings.free_mode_requests_per_minute,
                settings.free_mode_tokens_per_day,
                after_answer=after_answer,
            ),
            ledger=usage,
        )
        archive = ResponseArchive(responses, session_limits(settings))
        return cls(runner, Conversations(settings, sessions), archive, usage)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Write pending usage, close the providers' connections when the server stops (not Lambda)."""
    yield
    await app.state.services.usage.flush()
    await app.state.services.runner.aclose()


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    after_answer: AfterAnswer | None = None,
) -> FastAPI:
    """Create the app; pass `settings` or `services` to replace the defaults (tests do).

    `after_answer`: see `Services.from_settings` (the Lambda handler passes its extension).
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_file)
    app = FastAPI(
        title="LLM Server",
        version=__version__,
        description="A serverless chat API over OpenAI's Responses API, with a local model.",
        lifespan=_lifespan,
        docs_url=None,  # web/pages.py serves /docs (offline), at the gateway's stage path too
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services or Services.from_settings(settings, after_answer=after_answer)
    app.state.identity = IdentityPolicy(settings)
    # Each API's error shape by the paths it serves; the native one everywhere else.
    errors = ErrorShapes(NATIVE_ERRORS, ((openai_errors.PATH_PREFIX, openai_errors.OPENAI_ERRORS),))
    _add_middleware(app, settings, errors)
    install_error_handlers(app, errors)
    routers = (native_routes, usage_routes, openai_routes, stored_routes, legacy_routes)
    for router in (module.router for module in routers):
        app.include_router(router)
    app.include_router(system.router)
    app.include_router(pages.router)
    add_snapstart_hooks(app)
    return app


def _add_middleware(app: FastAPI, settings: Settings, errors: ErrorShapes) -> None:
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=[
                "Content-Type",
                "Authorization",
                "X-Api-Key",
                "X-Request-Id",
                "Idempotency-Key",
            ],
            expose_headers=["X-Request-Id", "Retry-After", "X-Cache", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(
        RequestContextMiddleware,
        errors=errors,
        max_body_bytes=settings.max_body_bytes,
        lambda_margin_seconds=settings.lambda_time_margin_seconds,
        body_timeout_seconds=settings.body_read_timeout_seconds,
    )
