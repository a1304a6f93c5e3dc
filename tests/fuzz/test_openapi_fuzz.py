"""Schemathesis against the app's own OpenAPI schema, over real HTTP: no 5xx, no off-schema reply.

The model behind the app answers at once (a stand-in that echoes), so the fuzzer spends its
budget on our HTTP layer, not on generating text. A fixed seed and a bounded number of cases keep
CI repeatable; FUZZ_EXAMPLES raises the bound for the longer on-demand run (`make fuzz`).
"""

import os
from array import array

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.base import EmbeddingLimits
from llm_server.values import Embeddings, Generation

EXAMPLES = int(os.getenv("FUZZ_EXAMPLES", "25"))


class EchoProvider:
    """Answers at once with the last user message, and embeds: a fast stand-in for a model."""

    name = "local"
    payer = "nobody"
    honours = frozenset({"top_p", "stop", "seed", "presence_penalty", "frequency_penalty"})

    async def generate(self, request):
        return Generation(
            text=request.messages[-1].content[:50], model="echo", input_tokens=1, output_tokens=1
        )

    async def stream(self, request):
        yield request.messages[-1].content[:50]
        yield await self.generate(request)

    def status(self):
        return {"model": "echo", "model_path": "memory", "loaded": True}

    def models(self):
        return ["echo"]

    def reply_model(self, model):
        return "echo"

    def embedding_models(self):
        return ["echo-embedding"]

    def embedding_limits(self, model):
        return EmbeddingLimits(max_inputs=16, dimensions=None, honours=frozenset({"dimensions"}))

    async def embed(self, request):
        vector = array("f", [0.5] * (request.dimensions or 4)).tobytes()
        return Embeddings((vector,) * request.count, "echo-embedding", request.count)

    async def count_tokens(self, request):
        return None

    async def warm_up(self):
        pass

    async def aclose(self):
        pass


@pytest.fixture(scope="module")
def api_schema():
    settings_ = make_settings(max_concurrent_requests=1000)
    service = Services.from_settings(settings_, local=EchoProvider(), openai=EchoProvider())
    with LiveServer(create_app(settings_, service)) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_no_server_errors_and_replies_match_the_schema(api_schema):
    """Every operation, each with its own bounded, derandomized Hypothesis run."""
    checked = []
    for operation in operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case):
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        run()
        checked.append(operation.label)
    assert "POST /api/v1/chat" in checked and "POST /v1/chat/completions" in checked
