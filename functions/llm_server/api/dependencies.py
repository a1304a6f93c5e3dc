"""FastAPI dependencies: the objects routes use, taken from the app so tests can swap them."""

from __future__ import annotations

from fastapi import Request

from llm_server.config.settings import Settings
from llm_server.services.chat_service import ChatService


def get_chat_service(request: Request) -> ChatService:
    """The app's chat service."""
    return request.app.state.chat_service


def get_app_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings
