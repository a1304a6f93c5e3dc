"""Shared fixtures: settings isolated from the developer's `.env`, and real servers on loopback."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from helpers.aws import OFFLINE_AWS_ENV, moto_server
from helpers.fake_openai import FakeOpenAI
from helpers.live_server import LiveServer
from helpers.logs import capture_logs
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.local_llama import LocalLlamaProvider
from llm_server.utils import aws


@pytest.fixture(scope="session")
def local_provider() -> LocalLlamaProvider:
    """One real llama.cpp model for the whole run (it loads on first use)."""
    return LocalLlamaProvider()


@pytest.fixture(scope="session")
def local_app(local_provider: LocalLlamaProvider) -> FastAPI:
    """The real app on the embedded defaults: no key, so every chat runs on the local model."""
    settings = make_settings()
    return create_app(settings, Services.from_settings(settings, local=local_provider))


@pytest.fixture(scope="session")
def local_server(local_app: FastAPI) -> Iterator[LiveServer]:
    """`local_app` served by uvicorn on a free loopback port."""
    with LiveServer(local_app) as server:
        yield server


@pytest.fixture
def client(local_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for `local_server`."""
    with httpx.Client(base_url=local_server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on loopback, shared by the run (each test uses its own resource names)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A Responses API server on loopback, standing in for OpenAI."""
    with FakeOpenAI() as server:
        yield server


FULL_KEY = re.compile(r"(?:sk-|llms_)[A-Za-z0-9_-]{20,}")  # an OpenAI key, a gateway key


@pytest.fixture(scope="session", autouse=True)
def offline_aws_environment() -> None:
    """The stand-ins' AWS credentials and region, for the whole run.

    Set before any module's fixture saves the environment to restore it: one that saved it
    before moto's server first set them would take them away from every later test.
    """
    for name, value in OFFLINE_AWS_ENV.items():
        os.environ.setdefault(name, value)


@pytest.fixture(autouse=True)
def own_aws_session() -> None:
    """Every test: AWS clients on a session of their own, with that test's credentials."""
    aws.renew()


@pytest.fixture(autouse=True)
def no_key_in_any_log_line() -> Iterator[None]:
    """Every test: no log line written while it ran may contain a whole API key."""
    with capture_logs() as logs:
        yield
    leaked = FULL_KEY.findall(logs.text)
    assert not leaked, f"a log line contains an API key: {leaked[0][:8]}..."
