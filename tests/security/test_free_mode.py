"""Free mode spends the server's key: client credential, quotas shared by containers, off switch."""

import json
import os
from pathlib import Path

import httpx
import pytest
from invoke import LAMBDA_ENV, LambdaContext
from mangum import Mangum

from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.stores import settings_and_stores
from llm_server.app import create_app
from llm_server.services.chat_service import ChatService
from llm_server.services.free_mode import FreeModeQuota
from llm_server.services.server_key import ServerKeyStore
from llm_server.stores.factory import quota_store

SERVER_KEY = "sk-free-server-" + "s" * 40
CALLER_KEY = "sk-free-caller-" + "c" * 40
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(params=["sqlite", "dynamodb"])
def kind(request):
    return request.param


def build(kind, moto_endpoint, fake, shared=None, **overrides):
    """An app on the server key; `shared` reuses another app's settings and stores."""
    overrides.setdefault("openai_base_url", fake.url)
    overrides.setdefault("openai_api_key", SERVER_KEY)
    overrides.setdefault("llm_provider", "openai")
    settings, sessions, _ = shared or settings_and_stores(kind, moto_endpoint, **overrides)
    client = getattr(sessions, "_client", None)
    quota = FreeModeQuota(
        quota_store(settings, client),
        settings.free_mode_requests_per_minute,
        settings.free_mode_tokens_per_day,
    )
    local = FailingProvider(AssertionError("no local model here"), name="local")
    service = ChatService.from_settings(
        settings, local=local, server_key=ServerKeyStore(settings), sessions=sessions, quota=quota
    )
    return create_app(settings, service), (settings, sessions, None)


def free(server, client="client-1", **fields):
    headers = {"X-Api-Key": client} if client else {}
    body = {"user_message": "free please", "free_mode": True, **fields}
    return httpx.post(f"{server.url}/api/v1/chat", json=body, headers=headers, timeout=30)


def test_free_mode_needs_a_client_credential(kind, moto_endpoint, fake):
    app, _ = build(kind, moto_endpoint, fake)
    with LiveServer(app) as server:
        response = free(server, client=None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "client_credential_required"
    assert response.json()["error"]["param"] == "X-Api-Key"
    assert fake.seen == []


def test_requests_per_minute_per_client_shared_by_two_containers(kind, moto_endpoint, fake):
    first, shared = build(kind, moto_endpoint, fake, free_mode_requests_per_minute=2)
    second, _ = build(kind, moto_endpoint, fake, shared=shared)
    with LiveServer(first) as one, LiveServer(second) as two:
        assert free(one).status_code == 200
        assert free(two).status_code == 200
        refused = free(one)
        other_client = free(two, client="client-2")
        own_key = free(one, openai_api_key=CALLER_KEY)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "free_mode_rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert other_client.status_code == 200
    assert own_key.status_code == 200 and own_key.json()["api_key_source"] == "user"
    assert len(fake.seen) == 4


def test_daily_token_quota(kind, moto_endpoint, fake):
    app, _ = build(kind, moto_endpoint, fake, free_mode_tokens_per_day=8)
    with LiveServer(app) as server:
        first = free(server)  # about 10 tokens: the quota is now used up
        refused = free(server)
    assert first.status_code == 200 and first.json()["total_tokens_used"] >= 8
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "free_mode_quota_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 86_400
    assert len(fake.seen) == 1


def test_free_mode_can_be_switched_off(kind, moto_endpoint, fake):
    app, _ = build(kind, moto_endpoint, fake, free_mode_enabled=False)
    with LiveServer(app) as server:
        response = free(server)
    assert response.status_code == 401
    assert "switched off" in response.json()["error_message"]
    assert fake.seen == []


def test_on_aws_the_client_is_the_api_gateway_key_id(kind, moto_endpoint, fake, monkeypatch):
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    app, _ = build(kind, moto_endpoint, fake, free_mode_requests_per_minute=1)
    handler = Mangum(app, lifespan="off")
    event = json.loads((EVENTS / "chat-rest.json").read_text(encoding="utf-8"))
    event["body"] = json.dumps({"user_message": "hi", "free_mode": True})
    event["requestContext"]["identity"]["apiKeyId"] = "k1abc"
    assert handler(event, LambdaContext())["statusCode"] == 200
    assert handler(event, LambdaContext())["statusCode"] == 429
    event["requestContext"]["identity"]["apiKeyId"] = "k2def"
    assert handler(event, LambdaContext())["statusCode"] == 200
