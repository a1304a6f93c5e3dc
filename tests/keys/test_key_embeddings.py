"""A gateway key's policy holds for /v1/embeddings as for chat: its models (by name or alias),
whether the operator pays, its rate and its budget. The real OpenAI SDK over real HTTP, the key
in X-Api-Key, on both stores; OpenAI's stand-in embeds on the server's key (free mode)."""

import json

import httpx
import pytest

import openai
from helpers.gateway_keys import admin, chat, code, create_key, keyed_app
from helpers.live_server import LiveServer
from helpers.tenants import CALLER_KEY

SMALL, LARGE = "text-embedding-3-small", "text-embedding-3-large"
FREE = {"openai_compat_free_mode": True}
LOOSE = {"free_mode_requests_per_minute": 1000, "free_mode_tokens_per_day": 10**9}


def sdk(server, key: str, api_key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=api_key, default_headers={"X-Api-Key": key}
    )


def embed(server, key: str, **body) -> httpx.Response:
    headers = {"X-Api-Key": key}
    return httpx.post(f"{server.url}/v1/embeddings", json=body, headers=headers, timeout=30)


def embeddings_sent(fake) -> int:
    return sum(seen.target.endswith("/v1/embeddings") for seen in fake.seen)


def test_a_keys_models_hold_for_embeddings_through_model_aliases(kind, moto_endpoint, fake):
    app, _ = keyed_app(kind, moto_endpoint, fake, model_aliases=f"embed={SMALL}", **FREE, **LOOSE)
    with LiveServer(app) as server:
        key = create_key(server, models=["embed"])["key"]  # the list names the alias
        client = sdk(server, key)
        by_name = client.embeddings.create(model=SMALL, input=["서울", "Seoul"])
        by_alias = client.embeddings.create(model="embed", input="서울")
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.embeddings.create(model=LARGE, input="서울")
        listed = {m.id for m in client.models.list()}
        every = {m.id for m in sdk(server, create_key(server, name="b")["key"]).models.list()}
    assert len(by_name.data) == 2 and by_name.model == SMALL
    assert by_alias.model == SMALL  # the alias is the model it names
    assert by_alias.data[0].embedding == by_name.data[0].embedding
    assert denied.value.code == "model_not_allowed"
    assert denied.value.body["param"] == "model"
    assert listed == {SMALL, "embed"}
    assert {SMALL, LARGE, "embed", "gpt-4o-mini"} <= every
    assert embeddings_sent(fake) == 2  # the refused one never reached OpenAI


def test_a_key_without_paid_models_embeds_only_on_its_own_openai_key(kind, moto_endpoint, fake):
    app, _ = keyed_app(kind, moto_endpoint, fake, **FREE, **LOOSE)
    with LiveServer(app) as server:
        key = create_key(server, paid_models=False)["key"]
        refused = embed(server, key, model=SMALL, input="hello")
        own = sdk(server, key, api_key=CALLER_KEY).embeddings.create(model=SMALL, input="hello")
    assert refused.status_code == 403 and code(refused) == "paid_models_not_allowed"
    assert len(own.data) == 1
    assert fake.seen[-1].headers["authorization"] == f"Bearer {CALLER_KEY}"


def test_chats_and_embeddings_share_a_keys_rpm(kind, moto_endpoint, fake):
    app, _ = keyed_app(kind, moto_endpoint, fake, **FREE, **LOOSE)
    with LiveServer(app) as server:
        key = create_key(server, rpm=2)["key"]
        first = embed(server, key, model=SMALL, input="one")
        second = chat(server, key)
        third = embed(server, key, model=SMALL, input="three")
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 429 and code(third) == "key_rate_limited"
    assert "retry-after" in third.headers


def test_a_keys_budget_stops_embeddings_before_any_call(kind, moto_endpoint, fake):
    """Priced at 0.1 USD a token: a request of eight words reserves 0.8 USD of a 1 USD budget
    (15 bytes: 8 tokens at most) and is charged 0.8 (the stand-in counts a token a word), so the
    second would pass the budget and is refused before OpenAI sees it."""
    prices = json.dumps({SMALL: {"input": 100_000}})
    app, _ = keyed_app(kind, moto_endpoint, fake, model_prices=prices, **FREE, **LOOSE)
    with LiveServer(app) as server:
        made = create_key(server, monthly_budget_usd=1)
        answers = [embed(server, made["key"], model=SMALL, input="a b c d e f g h") for _ in "12"]
        shown = admin(server, "GET", f"/keys/{made['id']}").json()
    assert [a.status_code for a in answers] == [200, 429]
    assert code(answers[1]) == "budget_exceeded"
    assert embeddings_sent(fake) == 1
    assert shown["requests"] == 1 and shown["spend_usd"] == pytest.approx(0.8)
