"""Bedrock's embedding models (Titan, Cohere) through `/v1/embeddings` and the official SDK.

ministack has no embedding models: boto3's real bedrock-runtime client answers under botocore's
`Stubber`, which checks every InvokeModel call against Bedrock's own service model; where calls
run at once (Titan's, one text each), a stand-in client answers each from its own body instead,
so the order of the answer is the request's whatever order the calls finish in.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from array import array
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

import openai
from helpers.bedrock import KNOWN, NOVA
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.bedrock import provider as bedrock_provider
from llm_server.providers.bedrock.provider import BedrockProvider
from llm_server.providers.retry import RetryPolicy

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-multilingual-v3"
COHERE_V4 = "us.cohere.embed-v4:0"
MODELS = f"{NOVA},{TITAN},{COHERE},{COHERE_V4}"
TEXTS = ["서울은 대한민국의 수도이다.", "Kimchi is fermented cabbage.", "장마는 6월에 시작한다."]


def vector_of(text: str, size: int = 4) -> list[float]:
    """A vector that says which text it is for (exact in float32)."""
    return [float(len(text)), *[float(i) / 4 for i in range(size - 1)]]


def invoked(payload: dict[str, Any], tokens: int | None = None) -> dict[str, Any]:
    """An InvokeModel answer: its JSON body, and Bedrock's token header when given."""
    raw = json.dumps(payload).encode()
    answer: dict[str, Any] = {
        "body": StreamingBody(io.BytesIO(raw), len(raw)),
        "contentType": "application/json",
    }
    if tokens is not None:
        headers = {"x-amzn-bedrock-input-token-count": str(tokens)}
        answer["ResponseMetadata"] = {"HTTPHeaders": headers}
    return answer


def asked(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """The InvokeModel parameters a call for `body` must carry."""
    return {
        "modelId": model,
        "body": json.dumps(body).encode(),
        "contentType": "application/json",
        "accept": "application/json",
    }


def error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"service_error_code": code, "service_message": message, "http_status_code": status}


@pytest.fixture
def stub() -> Iterator[Stubber]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield stubber
    stubber.assert_no_pending_responses()


@pytest.fixture
def one_call_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Titan's calls one after another, so stubbed answers meet their calls in order."""
    monkeypatch.setattr(bedrock_provider, "CONCURRENT_EMBEDDING_CALLS", 1)


def serve(client: Any, **overrides: Any) -> LiveServer:
    overrides.setdefault("llm_provider", "openai")
    overrides.setdefault("bedrock_models", MODELS)
    settings = make_settings(**overrides)
    bedrock = BedrockProvider(
        settings.bedrock_model_list(),
        retry=RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02),
        client=client,
    )
    openai_provider = FailingProvider(AssertionError("not OpenAI"))
    services = Services.from_settings(settings, bedrock=bedrock, openai=openai_provider)
    return LiveServer(create_app(settings, services))


def sdk(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="EMPTY", default_headers=KNOWN, max_retries=0
    )


def test_titan_embeds_each_text_in_a_call_of_its_own_and_the_caller_pays_its_tokens(
    stub, one_call_at_a_time
):
    for index, text in enumerate(TEXTS):
        body = {"inputText": text, "dimensions": 256}
        answer = {"embedding": vector_of(text), "inputTextTokenCount": 7 + index}
        stub.add_response("invoke_model", invoked(answer), asked(TITAN, body))
    with serve(stub.client) as server:
        made = sdk(server).embeddings.create(model=TITAN, input=TEXTS, dimensions=256)
        usage = httpx.get(f"{server.url}/api/v1/usage", headers=KNOWN).json()
    assert [item.embedding for item in made.data] == [vector_of(text) for text in TEXTS]
    assert [item.index for item in made.data] == [0, 1, 2]
    assert made.model == TITAN and made.usage.prompt_tokens == 7 + 8 + 9
    (row,) = [row for row in usage["by_model"] if row["model"] == TITAN]
    assert row["provider"] == "bedrock" and row["api_key_source"] == "server"
    assert row["input_tokens"] == 24 and row["output_tokens"] == 0
    assert row["cost_usd"] == pytest.approx(24 * 0.02 / 1e6)


def test_titan_takes_normalize_and_refuses_what_it_does_not_have(stub):
    body = {"inputText": "안녕", "normalize": False}
    answer = {"embedding": [3.0, 4.0], "inputTextTokenCount": 2}
    stub.add_response("invoke_model", invoked(answer), asked(TITAN, body))
    with serve(stub.client) as server:
        client = sdk(server)
        made = client.embeddings.create(
            model=TITAN, input="안녕", encoding_format="float", extra_body={"normalize": False}
        )
        with pytest.raises(openai.BadRequestError) as dimensions:
            client.embeddings.create(model=TITAN, input="안녕", dimensions=300)
        with pytest.raises(openai.BadRequestError) as input_type:
            client.embeddings.create(
                model=TITAN, input="안녕", extra_body={"input_type": "search_query"}
            )
        with pytest.raises(openai.BadRequestError) as too_long:
            client.embeddings.create(model=TITAN, input="가" * 50_001)
    assert made.data[0].embedding == [3.0, 4.0]
    assert dimensions.value.body["param"] == "dimensions"
    assert "256, 512, 1024" in dimensions.value.message
    assert input_type.value.body["param"] == "input_type"
    assert too_long.value.body["param"] == "input"


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("amazon.titan-embed-text-v1", {"inputText": "안녕"}),
        (
            "amazon.titan-embed-image-v1",
            {"inputText": "안녕", "embeddingConfig": {"outputEmbeddingLength": 384}},
        ),
    ],
)
def test_the_other_titan_embedders_take_their_own_bodies(stub, model, body):
    stub.add_response(
        "invoke_model",
        invoked({"embedding": [0.6, 0.8], "inputTextTokenCount": 2}),
        asked(model, body),
    )
    prices = json.dumps({model: {"input": 0.1}})  # not on the sheet: the operator prices them
    with serve(stub.client, bedrock_models=model, model_prices=prices) as server:
        extra = {"dimensions": 384} if "image" in model else {}
        made = sdk(server).embeddings.create(
            model=model, input="안녕", encoding_format="float", **extra
        )
    assert made.data[0].embedding == pytest.approx([0.6, 0.8]) and made.usage.total_tokens == 2


def test_titan_calls_run_a_few_at_once_and_answer_in_the_order_asked():
    """A stand-in client: each call sleeps as long as its text says, so later texts finish first."""
    client = _EchoingTitan()
    texts = [f"텍스트 {'가' * (20 - i)}" for i in range(20)]
    with serve(client) as server:
        made = sdk(server).embeddings.create(model=TITAN, input=texts, encoding_format="float")
    assert [item.embedding[0] for item in made.data] == [float(len(text)) for text in texts]
    assert made.usage.prompt_tokens == sum(len(text) for text in texts)
    assert client.most_at_once == bedrock_provider.CONCURRENT_EMBEDDING_CALLS


class _EchoingTitan:
    """Answers InvokeModel with a vector made from the text, after a pause as long as it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.most_at_once = 0

    def invoke_model(self, body: bytes, **_: Any) -> dict[str, Any]:
        text = json.loads(body)["inputText"]
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        time.sleep(len(text) / 1000)
        with self._lock:
            self._running -= 1
        answer = {"embedding": vector_of(text), "inputTextTokenCount": len(text)}
        return invoked(answer)


def test_cohere_batches_96_texts_a_call_as_documents_unless_asked_and_bedrock_counts_them(stub):
    texts = [f"문서 {i}" for i in range(100)]
    for batch, tokens in ((texts[:96], 500), (texts[96:], 20)):
        body = {
            "texts": batch,
            "input_type": "search_document",
            "embedding_types": ["float"],
            "truncate": "NONE",
        }
        answer = {"id": "x", "embeddings": {"float": [vector_of(t) for t in batch]}}
        stub.add_response("invoke_model", invoked(answer, tokens), asked(COHERE, body))
    query = {
        "texts": ["질문"],
        "input_type": "search_query",
        "embedding_types": ["float"],
        "truncate": "NONE",
    }
    answer = {"id": "y", "response_type": "embeddings_floats", "embeddings": [[0.5, 0.5]]}
    stub.add_response("invoke_model", invoked(answer, 3), asked(COHERE, query))
    with serve(stub.client) as server:
        client = sdk(server)
        documents = client.embeddings.create(model=COHERE, input=texts)
        asked_as_query = client.embeddings.create(
            model=COHERE, input="질문", extra_body={"input_type": "search_query"}
        )
    assert len(documents.data) == 100 and documents.usage.prompt_tokens == 520
    assert [item.embedding for item in documents.data] == [vector_of(t) for t in texts]
    assert asked_as_query.data[0].embedding == [0.5, 0.5]
    assert asked_as_query.usage.total_tokens == 3


def test_cohere_v4_takes_dimensions_as_its_output_dimension_and_answers_in_base64(stub):
    body = {
        "texts": ["안녕하세요"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "truncate": "NONE",
        "output_dimension": 256,
    }
    answer = {"embeddings": {"float": [vector_of("안녕하세요", 256)]}}
    stub.add_response("invoke_model", invoked(answer, 4), asked(COHERE_V4, body))
    with serve(stub.client) as server:
        raw = httpx.post(
            f"{server.url}/v1/embeddings",
            json={
                "model": COHERE_V4,
                "input": "안녕하세요",
                "dimensions": 256,
                "encoding_format": "base64",
            },
            headers=KNOWN,
        )
    assert raw.status_code == 200, raw.text
    (item,) = raw.json()["data"]
    decoded = array("f", base64.b64decode(item["embedding"])).tolist()
    assert decoded == vector_of("안녕하세요", 256)


def test_cohere_refuses_what_it_cannot_take_before_any_call(stub):
    with serve(stub.client) as server:
        client = sdk(server)
        with pytest.raises(openai.BadRequestError) as too_long:
            client.embeddings.create(model=COHERE, input=["짧다", "가" * 2049])
        with pytest.raises(openai.BadRequestError) as input_type:
            client.embeddings.create(
                model=COHERE, input="x", extra_body={"input_type": "summaries"}
            )
        with pytest.raises(openai.BadRequestError) as dimensions:
            client.embeddings.create(model=COHERE, input="x", dimensions=256)
    assert too_long.value.body["param"] == "input" and "input[1]" in too_long.value.message
    assert input_type.value.body["param"] == "input_type"
    assert "search_query" in input_type.value.message
    assert dimensions.value.body["param"] == "dimensions"


def test_a_throttled_call_is_retried_then_answered(stub):
    stub.add_client_error("invoke_model", **error("ThrottlingException", "Too many", 429))
    stub.add_response("invoke_model", invoked({"embedding": [1.0], "inputTextTokenCount": 1}))
    with serve(stub.client) as server:
        made = sdk(server).embeddings.create(model=TITAN, input="x", encoding_format="float")
    assert made.data[0].embedding == [1.0]


@pytest.mark.parametrize(
    ("code", "status", "error_class", "our_code"),
    [
        ("ThrottlingException", 429, openai.RateLimitError, "upstream_rate_limited"),
        ("ValidationException", 400, openai.BadRequestError, "upstream_validation_error"),
        ("AccessDeniedException", 403, openai.APIStatusError, "bedrock_model_unavailable"),
    ],
)
def test_failures_are_mapped_as_for_converse(stub, code, status, error_class, our_code):
    attempts = 3 if code == "ThrottlingException" else 1
    for _ in range(attempts):
        stub.add_client_error("invoke_model", **error(code, "refused", status))
    with serve(stub.client) as server, pytest.raises(error_class) as raised:
        sdk(server).embeddings.create(model=COHERE, input="x")
    assert raised.value.code == our_code
    if code == "AccessDeniedException":
        assert raised.value.status_code == 502  # the operator's to fix, not the caller's


@pytest.mark.parametrize(
    "answer",
    [
        {"embeddings": {"float": []}},  # no vector for the text
        {"embeddings": [["0.5"]]},  # not numbers
        {"embeddings": [[1e39]]},  # beyond float32: no finite vector to send
    ],
)
def test_a_malformed_answer_is_a_502_and_charges_nothing(stub, answer):
    stub.add_response("invoke_model", invoked(answer, 3))
    with serve(stub.client) as server:
        with pytest.raises(openai.APIStatusError) as raised:
            sdk(server).embeddings.create(model=COHERE, input="x")
        usage = httpx.get(f"{server.url}/api/v1/usage", headers=KNOWN).json()
    assert raised.value.status_code == 502 and raised.value.code == "upstream_malformed"
    assert usage["by_model"] == []


def test_embedding_models_are_for_embeddings_and_chat_models_for_chat(stub):
    with serve(stub.client) as server:
        client = sdk(server)
        listed = {model.id for model in client.models.list()}
        with pytest.raises(openai.BadRequestError) as chat_with_titan:
            client.chat.completions.create(
                model=TITAN, messages=[{"role": "user", "content": "안녕"}]
            )
        with pytest.raises(openai.BadRequestError) as embed_with_nova:
            client.embeddings.create(model=NOVA, input="안녕")
    assert {TITAN, COHERE, COHERE_V4, NOVA} <= listed
    assert chat_with_titan.value.body["param"] == "model"
    assert embed_with_nova.value.body["param"] == "model"


def test_the_operators_account_embeds_for_known_callers_only(stub):
    with serve(stub.client) as server:
        anonymous = openai.OpenAI(base_url=f"{server.url}/v1", api_key="EMPTY", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as raised:
            anonymous.embeddings.create(model=TITAN, input="안녕")
    assert raised.value.body["param"] == "X-Api-Key"
