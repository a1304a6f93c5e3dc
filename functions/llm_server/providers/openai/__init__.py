"""OpenAI's Responses API, as a provider, called as the official SDK calls it.

`provider.py` runs a call (retries within the time budget, streaming); `direct.py` makes it
(one POST, its JSON or its server-sent events back); `client.py` picks the HTTP client library;
`retry.py` says what deserves another try; `wire.py` maps our request and its answer to and
from JSON; `errors.py` translates upstream failures into ours.
"""

from llm_server.providers.openai.client import pick_transport
from llm_server.providers.openai.provider import OpenAIResponsesProvider
from llm_server.providers.retry import RetryPolicy

__all__ = [
    "OpenAIResponsesProvider",
    "RetryPolicy",
    "pick_transport",
]
