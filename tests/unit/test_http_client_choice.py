"""Which HTTP client calls OpenAI: aiohttp when installed (auto), or as configured."""

import pytest

from helpers.template import load_template
from llm_server.exceptions import ConfigurationException
from llm_server.providers.openai import pick_transport


def test_auto_takes_aiohttp_where_installed_and_httpx_is_always_honoured():
    assert pick_transport("auto") == "aiohttp"
    assert pick_transport("httpx") == "httpx"
    assert pick_transport("aiohttp") == "aiohttp"


def test_auto_falls_back_to_httpx_without_aiohttp(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert pick_transport("auto") == "httpx"
    with pytest.raises(ConfigurationException, match="OPENAI_HTTP_CLIENT=aiohttp"):
        pick_transport("aiohttp")


def test_the_deployed_functions_use_httpx_without_looking_for_aiohttp(monkeypatch):
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    monkeypatch.setattr("importlib.util.find_spec", lambda name: pytest.fail("searched"))
    assert pick_transport(env["OPENAI_HTTP_CLIENT"]) == "httpx"
