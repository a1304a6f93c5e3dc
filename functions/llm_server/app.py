"""The composition root: build the services from settings, and the FastAPI app around them.

The same app serves locally (uvicorn) and on Lambda (Mangum). Everything a test may replace
(providers, key store, stores, quota, cache) is a keyword of `Services.from_settings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from llm_server import __version__
from llm_server.admin_api import PATH_PREFIX as ADMIN_PATHS
from llm_server.anthropic_api import PATH_PREFIX as ANTHROPIC_PATHS
from llm_server.config.settings import Settings, get_settings
from llm_server.core.free_mode import FreeModeQuota
from llm_server.core.guardrail import Guard
from llm_server.core.response_cache import ResponseCache
from llm_server.core.runner import TurnRunner
from llm_server.core.server_key import ServerKeyStore
from llm_server.native_api.errors import NATIVE_ERRORS
from llm_server.openai_api import PATH_PREFIX as OPENAI_PATHS
from llm_server.providers.base import ChatProvider
from llm_server.stores.responses import ResponseStore
from llm_server.stores.sessions import SessionStore
from llm_server.usage.ledger import UsageLedger
from llm_server.utils.after_answer import AfterAnswer
from llm_server.utils.log import configure_logging
from llm_server.web import system
from llm_server.web.errors import ErrorShape, ErrorShapes, install_error_handlers
from llm_server.web.identity import IdentityPolicy
from llm_server.web.lazy_routes import include_lazily
from llm_server.web.middleware import RequestContextMiddleware
from llm_server.web.snapstart import add_snapstart_hooks

if TYPE_CHECKING:
    from llm_server.native_api.conversation import Conversations
    from llm_server.openai_api.background import BackgroundResponses, Start
    from llm_server.openai_api.conversations import ConversationArchive
    from llm_server.openai_api.stored import ResponseArchive
    from llm_server.stores.background import BackgroundStore
    from llm_server.stores.conversations import ConversationStore
    from llm_server.stores.keys import KeyStore

# Each API's routers, imported on the first request on its paths (web/lazy_routes.py); system
# info and health are always there. The pages take any other path (a 404 loads them first).
LAZY_ROUTERS = (
    (("/api/v1/",), ("llm_server.native_api.routes", "llm_server.native_api.usage")),
    ((ANTHROPIC_PATHS,), ("llm_server.anthropic_api.routes",)),
    (
        (OPENAI_PATHS,),
        (
            "llm_server.openai_api.routes",
            "llm_server.openai_api.conversation_routes",
            "llm_server.openai_api.stored_routes",
            "llm_server.openai_api.legacy",
            "llm_server.openai_api.embeddings",
        ),
    ),
    ((ADMIN_PATHS,), ("llm_server.admin_api.routes",)),
    ((), ("llm_server.web.pages",)),
)


@dataclass(frozen=True)
class Services:
    """What the routes use: the runner and the usage ledger; each API's own, made on first use.

    The native API's conversations and the OpenAI API's stored responses are built from the
    settings and stores here when a route of theirs first asks (their modules load with them).
    """

    runner: TurnRunner
    usage: UsageLedger
    settings: Settings
    sessions: SessionStore | None = None
    response_store: ResponseStore | None = None
    key_store: KeyStore | None = None
    background_store: BackgroundStore | None = None
    conversation_store: ConversationStore | None = None

    @cached_property
    def keys(self) -> KeyStore:
        """The gateway's keys (the store the settings name, unless one was given)."""
        from llm_server.stores.factory import key_store

        return self.key_store or key_store(self.settings)

    @cached_property
    def conversations(self) -> Conversations:
        """The native API's sessions."""
        from llm_server.native_api.conversation import Conversations

        return Conversations(self.settings, self.sessions)

    @cached_property
    def responses(self) -> ResponseArchive:
        """The OpenAI API's stored responses."""
        from llm_server.openai_api.stored import ResponseArchive
        from llm_server.stores.factory import session_limits

        return ResponseArchive(self.response_store, session_limits(self.settings))

    @cached_property
    def openai_conversations(self) -> ConversationArchive:
        """The OpenAI API's conversations (off with SESSIONS_ENABLED=false, as stored responses)."""
        from llm_server.openai_api.conversations import ConversationArchive
        from llm_server.stores.factory import conversation_store, session_limits

        settings = self.settings
        store = self.conversation_store
        if store is None and settings.sessions_enabled:
            store = conversation_store(settings)
        return ConversationArchive(store, session_limits(settings))

    @cached_property
    def background(self) -> BackgroundResponses:
        """The OpenAI API's background responses (off with SESSIONS_ENABLED=false)."""
        from llm_server.openai_api.background import BackgroundResponses
        from llm_server.stores.factory import background_store

        settings = self.settings
        store = self.background_store
        if store is None and settings.sessions_enabled:
            store = background_store(settings)
        return BackgroundResponses(
            store, settings, self.runner, self.responses, self.openai_conversations
        )

    @cached_property
    def start_background(self) -> Start | None:
        """How a queued background response starts: None, a task here; on AWS, its function."""
        if not self.settings.background_function:
            return None
        from llm_server.background_handler import invoker

        return invoker(self.settings.background_function)

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
        guard: Guard | None = None,
        keys: KeyStore | None = None,
        conversation_store: ConversationStore | None = None,
        background_store: BackgroundStore | None = None,
        **providers: ChatProvider | None,
    ) -> Services:
        """Wire the real providers, key store, session store, quota and cache from settings.

        Anything passed in replaces what the settings would build (tests inject this way); a
        provider by its name in `providers/registry.py` (`local=`, `openai=`, `bedrock=`).
        `after_answer` (Lambda's extension) takes the ledger's and quota's writes that can wait
        for the answer to have gone; `guard` is BEDROCK_GUARDRAIL's, unless given.
        """
        from llm_server.providers.registry import build_providers
        from llm_server.stores.factory import (
            quota_store,
            response_store,
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
            guard=guard or Guard.from_settings(settings),
        )
        return cls(
            runner,
            usage,
            settings,
            sessions,
            responses,
            keys,
            background_store=background_store,
            conversation_store=conversation_store,
        )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """A long-lived server's start and stop (Mangum on Lambda runs none).

    Every route is loaded before the first request; at stop, pending usage is written and the
    providers' connections closed.
    """
    app.state.load_routes()
    yield
    await app.state.services.usage.flush()
    await app.state.services.runner.aclose()


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    after_answer: AfterAnswer | None = None,
) -> FastAPI:
    """Create the app; pass `settings` or `services` to replace the defaults (tests do).

    `after_answer`: see `Services.from_settings` (the Lambda handler passes its extension);
    each request's log line and metrics go to it too (`RequestContextMiddleware`).
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_file)
    app = FastAPI(
        title="LLM Server",
        version=__version__,
        description="An LLM gateway: its native chat API, OpenAI's and Anthropic's APIs, over "
        "OpenAI, Amazon Bedrock and a local model.",
        lifespan=_lifespan,
        docs_url=None,  # web/pages.py serves /docs (offline), at the gateway's stage path too
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services or Services.from_settings(settings, after_answer=after_answer)
    services = app.state.services
    app.state.identity = IdentityPolicy(settings, keys=lambda: services.keys)
    # Each API's error shape by the paths it serves; the native one everywhere else.
    errors = ErrorShapes(
        NATIVE_ERRORS,
        (
            (ANTHROPIC_PATHS, _anthropic_errors),
            (OPENAI_PATHS, _openai_errors),
            (ADMIN_PATHS, _admin_errors),
        ),
    )
    _add_middleware(app, settings, errors, after_answer)
    install_error_handlers(app, errors)
    app.include_router(system.router)
    app.state.load_routes = include_lazily(app, LAZY_ROUTERS)
    add_snapstart_hooks(app)
    return app


def _anthropic_errors() -> ErrorShape:
    from llm_server.anthropic_api.errors import ANTHROPIC_ERRORS

    return ANTHROPIC_ERRORS


def _openai_errors() -> ErrorShape:
    from llm_server.openai_api.errors import OPENAI_ERRORS

    return OPENAI_ERRORS


def _admin_errors() -> ErrorShape:
    from llm_server.admin_api.errors import ADMIN_ERRORS

    return ADMIN_ERRORS


def _add_middleware(
    app: FastAPI, settings: Settings, errors: ErrorShapes, after_answer: AfterAnswer | None
) -> None:
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
                "anthropic-version",
                "anthropic-beta",
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
        after_answer=after_answer,
    )
