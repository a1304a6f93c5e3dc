"""Build the FastAPI application: the same app serves locally (uvicorn) and on Lambda (Mangum)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from llm_server import __version__
from llm_server.api.errors import install_error_handlers
from llm_server.api.identity import IdentityPolicy
from llm_server.api.middleware import RequestContextMiddleware
from llm_server.api.routes import chat, openai_compat, system
from llm_server.config.settings import Settings, get_settings
from llm_server.services.chat_service import ChatService
from llm_server.utils.logging import configure_logging


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Close the providers' connections when the server stops (Lambda never runs this)."""
    yield
    await app.state.chat_service.aclose()


def create_app(settings: Settings | None = None, service: ChatService | None = None) -> FastAPI:
    """Create the app; pass `settings` or `service` to replace the defaults (tests do)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_file)
    app = FastAPI(
        title="LLM Server",
        version=__version__,
        description="A serverless chat API over OpenAI's Responses API, with a local model.",
        lifespan=_lifespan,
        docs_url=None,  # api/routes/system.py serves /docs, at the gateway's stage path too
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.chat_service = service or ChatService.from_settings(settings)
    app.state.identity = IdentityPolicy(settings)
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
        max_body_bytes=settings.max_body_bytes,
        lambda_margin_seconds=settings.lambda_time_margin_seconds,
    )
    install_error_handlers(app)
    app.include_router(chat.router)
    app.include_router(system.router)
    app.include_router(system.docs_router)
    app.include_router(openai_compat.router)
    return app
