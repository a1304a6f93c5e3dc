"""Embeddings are spent as chat is: charged to the tenant to the token at the sheet's embedding
prices, shown in `GET /api/v1/usage`, counted against the free-mode quotas and stopped by the
tenant's budget before any call; served on the operator's money only to callers it knows.

Through the real HTTP API, on the OpenAI stand-in (the server's key in free mode) and on Bedrock
(boto3's client under Stubber), on both stores.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal

import boto3
import httpx
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from helpers.live_server import LiveServer
from helpers.tenants import tenant_app
from llm_server.providers.bedrock.provider import BedrockProvider

TITAN = "amazon.titan-embed-text-v2:0"
SMALL = "text-embedding-3-small"
FREE = {"openai_compat_free_mode": True}


def embed(server, client="client-1", **body) -> httpx.Response:
    headers = {"X-Api-Key": client} if client else {}
    return httpx.post(f"{server.url}/v1/embeddings", json=body, headers=headers, timeout=30)


def usage_of(server, client="client-1") -> dict:
    answer = httpx.get(f"{server.url}/api/v1/usage", headers={"X-Api-Key": client}, timeout=30)
    return answer.json()


def test_openai_embeddings_on_the_servers_key_are_charged_to_the_token(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, **FREE)
    texts = ["서울 날씨 맑음", "부산 바다", "one two three four"]
    with LiveServer(app) as server:
        answers = [embed(server, model=SMALL, input=texts) for _ in range(2)]
        own = usage_of(server)
        other = usage_of(server, client="client-2")
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    tokens = answers[0].json()["usage"]["prompt_tokens"]
    assert tokens == 9  # the stand-in counts a token a word
    (row,) = own["by_model"]
    assert (row["model"], row["provider"], row["api_key_source"]) == (SMALL, "openai", "server")
    assert (row["requests"], row["input_tokens"], row["output_tokens"]) == (2, 18, 0)
    # text-embedding-3-small: 0.02 USD per 1M input tokens
    assert Decimal(str(row["cost_usd"])) == Decimal(18) * Decimal("0.02") / 1_000_000
    assert other["by_model"] == []


def test_a_tenants_budget_stops_embeddings_before_any_call(kind, moto_endpoint, fake):
    """Priced at 0.1 USD a token, a 1 USD budget holds a handful of short requests, then 429s."""
    prices = json.dumps({SMALL: {"input": 100_000, "output": 0}})
    app, _ = tenant_app(
        kind,
        moto_endpoint,
        fake,
        model_prices=prices,
        tenant_monthly_budget_usd=1.0,
        free_mode_requests_per_minute=100,
        **FREE,
    )
    with LiveServer(app) as server:
        answers = [embed(server, model=SMALL, input="서울 날씨") for _ in range(8)]
        spent = usage_of(server)["cost_usd"]
    codes = [a.status_code for a in answers]
    assert 200 in codes and codes[-1] == 429
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {
        "budget_exceeded"
    }
    assert len(fake.seen) == codes.count(200)  # a refused request never reached OpenAI
    assert 0 < spent <= 1.0


def test_embeddings_count_against_the_free_mode_tokens_a_day(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, free_mode_tokens_per_day=50, **FREE)
    with LiveServer(app) as server:
        large = embed(server, model=SMALL, input=["긴 문장입니다 " * 20])
        small = embed(server, model=SMALL, input=["짧다"])
    assert large.status_code == 429
    assert large.json()["error"]["code"] == "free_mode_quota_exceeded"
    assert small.status_code == 200


def titan_app(kind, moto_endpoint):
    """An app serving Titan on a bedrock-runtime client, for Stubber; and that client."""
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    provider = BedrockProvider([TITAN], client=client)
    app, _ = tenant_app(kind, moto_endpoint, None, bedrock_models=TITAN, bedrock=provider)
    return app, client


def titan_answer(vector: list[float], tokens: int) -> dict:
    body = json.dumps({"embedding": vector, "inputTextTokenCount": tokens}).encode()
    return {"body": StreamingBody(io.BytesIO(body), len(body)), "contentType": "application/json"}


def test_bedrock_embeddings_are_charged_to_known_callers_and_refused_to_others(kind, moto_endpoint):
    app, client = titan_app(kind, moto_endpoint)
    with Stubber(client) as stub, LiveServer(app) as server:
        stub.add_response("invoke_model", titan_answer([0.5, -0.25, 0.125], 7))
        stub.add_response("invoke_model", titan_answer([0.0, 1.0, 0.0], 5))
        known = embed(server, model=TITAN, input=["서울", "부산"], encoding_format="float")
        anonymous = embed(server, client=None, model=TITAN, input="서울")
        own = usage_of(server)
    assert known.status_code == 200, known.text
    # Titan takes a text a call, the calls at once: which answer met which text is theirs to say
    vectors = sorted(d["embedding"] for d in known.json()["data"])
    assert vectors == [[0.0, 1.0, 0.0], [0.5, -0.25, 0.125]]
    assert known.json()["usage"] == {"prompt_tokens": 12, "total_tokens": 12}
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "client_credential_required"
    (row,) = own["by_model"]
    assert (row["model"], row["provider"], row["input_tokens"]) == (TITAN, "bedrock", 12)
    # Titan Text Embeddings V2: 0.02 USD per 1M input tokens
    assert Decimal(str(row["cost_usd"])) == Decimal(12) * Decimal("0.02") / 1_000_000


@pytest.mark.parametrize("dimensions", [100, 2048])
def test_titan_dimensions_it_cannot_make_are_a_400_before_any_call(kind, moto_endpoint, dimensions):
    app, client = titan_app(kind, moto_endpoint)
    with Stubber(client), LiveServer(app) as server:  # no response queued: a call would fail
        answer = embed(server, model=TITAN, input="서울", dimensions=dimensions)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "dimensions"
