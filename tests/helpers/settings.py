"""Settings for tests: the defaults plus overrides, never the developer's `.env`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from llm_server.config.settings import Settings, load_settings


def make_settings(**overrides: object) -> Settings:
    """Settings from the defaults plus `overrides`, ignoring `.env`, with no server key.

    Each call gets its own SQLite file, and the response cache is off unless a test turns it
    on, so every other test really reaches its provider. `client-1` and `client-2` are the
    known client keys (`X-Api-Key`), as on a server with CLIENT_API_KEYS set.
    """
    overrides.setdefault("openai_api_key", None)
    overrides.setdefault("client_api_keys", "client-1,client-2")
    overrides.setdefault("log_file", "")
    overrides.setdefault("store_path", str(Path(tempfile.mkdtemp()) / "store.sqlite3"))
    overrides.setdefault("cache_enabled", False)
    return load_settings(_env_file=None, **overrides)
