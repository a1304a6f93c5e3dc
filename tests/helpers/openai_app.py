"""The app on the OpenAI provider in front of the Responses API stand-in, and `/v1` calls to it."""

from __future__ import annotations

from typing import Any

import httpx

from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app


def openai_app_server(fake: Any, **overrides: Any) -> LiveServer:
    """A LiveServer (enter it) on `LLM_PROVIDER=openai` unless overridden; no local model."""
    overrides.setdefault("llm_provider", "openai")
    settings = make_settings(openai_base_url=fake.url, **overrides)
    local = FailingProvider(AssertionError("no local model here"), name="local")
    return LiveServer(create_app(settings, Services.from_settings(settings, local=local)))


def post_v1(server: LiveServer, path: str, body: dict[str, Any], key: str) -> httpx.Response:
    """`POST /v1<path>` with `key` as the bearer token."""
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{server.url}/v1{path}", json=body, headers=headers, timeout=30)
