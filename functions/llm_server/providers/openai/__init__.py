"""OpenAI's Responses API through the official SDK, as a provider.

`provider.py` runs a call (retries within the time budget, streaming); `client.py` holds the
SDK's clients (transport, preloading, one connection pool for every key); `retry.py` says what
deserves another try; `wire.py` maps our request and its answer to and from JSON; `errors.py`
translates the SDK's errors into ours.
"""

from llm_server.providers.openai.client import pick_transport
from llm_server.providers.openai.errors import map_openai_error
from llm_server.providers.openai.provider import OpenAIResponsesProvider
from llm_server.providers.retry import RetryPolicy

__all__ = [
    "OpenAIResponsesProvider",
    "RetryPolicy",
    "map_openai_error",
    "pick_transport",
]
