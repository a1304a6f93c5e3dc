"""Which HTTP client the OpenAI SDK gets: aiohttp off Lambda when installed, httpx2 on Lambda."""

import pytest

from llm_server.exceptions import ConfigurationException
from llm_server.providers.openai_responses import pick_transport


def test_auto_takes_aiohttp_locally_and_httpx_on_lambda(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert pick_transport("auto") == "aiohttp"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "llm-server")
    assert pick_transport("auto") == "httpx"
    assert pick_transport("aiohttp") == "aiohttp"


def test_auto_falls_back_to_httpx_without_aiohttp(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert pick_transport("auto") == "httpx"
    with pytest.raises(ConfigurationException, match="OPENAI_HTTP_CLIENT=aiohttp"):
        pick_transport("aiohttp")
