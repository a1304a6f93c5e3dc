"""An app with Bedrock models, as the Bedrock suites run it (boto3 reaches an emulator)."""

from __future__ import annotations

import openai
from helpers.fakes import FailingProvider
from helpers.settings import make_settings
from llm_server.app import Services, create_app

NOVA = "us.amazon.nova-lite-v1:0"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
KNOWN = {"X-Api-Key": "client-1"}


def bedrock_app(openai=None, **overrides):
    """An app whose Bedrock models are Nova Lite and Claude 3.5 Haiku (ap-northeast-2)."""
    overrides.setdefault("bedrock_models", f"{NOVA},{CLAUDE}")
    overrides.setdefault("bedrock_region", "ap-northeast-2")
    overrides.setdefault("llm_provider", "openai")
    settings = make_settings(**overrides)
    services = Services.from_settings(
        settings, openai=openai or FailingProvider(AssertionError("OpenAI must not be called"))
    )
    return create_app(settings, services)


def known_sdk(server) -> openai.OpenAI:
    """The `openai` SDK as a known client uses it: the server's `/v1`, its key in X-Api-Key."""
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="EMPTY", default_headers=KNOWN, max_retries=0
    )
