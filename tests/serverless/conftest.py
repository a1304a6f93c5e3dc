"""The Lambda handler's environment: Lambda's, the template's provider, a Responses API stand-in."""

import importlib
import os
import sys
import tempfile
from pathlib import Path

import invoke
import pytest

from helpers.fake_openai import FakeOpenAI
from helpers.lambda_events import SERVER_KEY
from llm_server.config.settings import get_settings


@pytest.fixture(scope="module")
def upstream():
    """The Responses API stand-in the handler's SDK calls."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def lambda_env(upstream):
    """The handler's environment: Lambda's, the template's provider, a server key in the env."""
    saved = dict(os.environ)
    os.environ.pop("OPENAI_SECRET_NAME", None)
    os.environ["LLM_PROVIDER"] = "openai"
    os.environ["OPENAI_API_KEY"] = SERVER_KEY  # free mode's key; the template reads a secret
    os.environ["OPENAI_BASE_URL"] = upstream.url
    os.environ["CACHE_ENABLED"] = "false"  # every invocation really calls the upstream
    os.environ["STORE_PATH"] = str(Path(tempfile.mkdtemp()) / "store.sqlite3")
    invoke.use_lambda_environment()
    get_settings.cache_clear()
    # The handler builds its app at import: rebuild it under this environment, whatever
    # imported it before.
    for name in ("llm_server.asgi", "llm_server.lambda_handler"):
        if name in sys.modules:
            importlib.reload(sys.modules[name])
    yield
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()
