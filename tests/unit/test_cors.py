"""CORS is off unless CORS_ALLOW_ORIGINS names origins; then the app answers preflights itself."""

import httpx

from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app

PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def app_with(**settings):
    settings = make_settings(**settings)
    unused = FailingProvider(AssertionError("no chat in these tests"))
    return create_app(settings, Services.from_settings(settings, openai=unused, local=unused))


def test_preflight_from_an_allowed_origin():
    with LiveServer(app_with(cors_allow_origins="https://app.example.com, https://b.example")) as s:
        response = httpx.options(f"{s.url}/api/v1/chat", headers=PREFLIGHT)
        health = httpx.get(f"{s.url}/api/v1/health", headers={"Origin": "https://b.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert health.headers["access-control-allow-origin"] == "https://b.example"
    assert "x-request-id" in health.headers["access-control-expose-headers"].lower()


def test_no_cors_headers_by_default_or_for_other_origins():
    with LiveServer(app_with()) as s:
        default = httpx.options(f"{s.url}/api/v1/chat", headers=PREFLIGHT)
    with LiveServer(app_with(cors_allow_origins="https://app.example.com")) as s:
        other = httpx.get(f"{s.url}/api/v1/health", headers={"Origin": "https://evil.example"})
    assert default.status_code == 405
    assert "access-control-allow-origin" not in default.headers
    assert "access-control-allow-origin" not in other.headers
