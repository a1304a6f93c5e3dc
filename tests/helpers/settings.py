"""Settings for tests: the defaults plus overrides, never the developer's `.env`."""

from __future__ import annotations

from llm_server.config.settings import Settings, load_settings


def make_settings(**overrides: object) -> Settings:
    """Settings from the defaults plus `overrides`, ignoring `.env`, with no server key."""
    overrides.setdefault("openai_api_key", None)
    overrides.setdefault("log_file", "")
    return load_settings(_env_file=None, **overrides)
