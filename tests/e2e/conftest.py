"""One deployment for the e2e module: ministack on loopback, the built stack deployed to it."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from helpers.aws_emulator import BUILD, MINISTACK, Stack, delete, deploy, emulator
from helpers.fake_openai import FakeOpenAI

SERVER_KEY = "sk-e2e-server-" + "s" * 40
NOVA = "us.amazon.nova-lite-v1:0"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
ORIGIN = "https://app.example.com"
KEY_CACHE_SECONDS = 3  # the authorizer's cache: how long a revoked key may still work


def parameters(secret: str, **changed: str) -> dict[str, str]:
    """The suite's deploy parameters (its OpenAI secret's name), with `changed` on top."""
    return {
        "Stage": "dev",
        "OpenAISecretName": secret,
        "Tracing": "PassThrough",
        "CorsAllowOrigins": ORIGIN,
        "BedrockModels": NOVA,
        # every server-paid call of the suite (free mode, Bedrock) shares one tenant's key
        "FreeModeRequestsPerMinute": "1000",
        "ThrottlingRateLimit": "200",
        "ThrottlingBurstLimit": "400",
        "KeyCacheSeconds": str(KEY_CACHE_SECONDS),
        **changed,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def upstream():
    """The Responses API stand-in the deployed functions call."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def endpoint() -> str:
    """ministack on loopback for the run (every stack of the suite deploys to it), and the name
    of the OpenAI key's secret in its Secrets Manager."""
    missing = [str(p) for p in (BUILD / "template.yaml", MINISTACK) if not p.exists()]
    if missing:
        message = f"missing {', '.join(missing)}: `make e2e` (or `make test`) builds them"
        if os.environ.get("E2E_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    with emulator(_free_port()) as url:
        secrets = Stack(url, "", {}, "", "").client("secretsmanager")
        secrets.create_secret(Name=SECRET, SecretString=json.dumps({"OPENAI_API_KEY": SERVER_KEY}))
        secrets.create_secret(Name="someone-elses-secret", SecretString="not yours")
        yield url


SECRET = "llm-server/e2e/openai-api-key"  # a constant: tests import this module a second time


@contextmanager
def deployed(endpoint: str, upstream, values: dict[str, str], source=None) -> Iterator[Stack]:
    """A stack deployed as `sam deploy` leaves it (`source`: another template of the build),
    deleted at the end."""
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    env = {"OPENAI_BASE_URL": upstream.url}
    made = deploy(endpoint, name, values, env, *([source] if source else []))
    try:
        yield made
    finally:
        delete(made)
        (BUILD / f"{name}-template.json").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def stack(endpoint, upstream) -> Iterator[Stack]:
    """The stack the suite shares."""
    with deployed(endpoint, upstream, parameters(SECRET)) as made:
        yield made
