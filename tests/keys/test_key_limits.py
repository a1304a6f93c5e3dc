"""Each field of a key's policy holds, over real HTTP, on both stores, and under concurrency."""

import concurrent.futures

import httpx
import pytest

import openai
from helpers.clock import FakeClock
from helpers.fake_openai import Step
from helpers.gateway_keys import admin, chat, code, create_key, keyed_app
from helpers.live_server import LiveServer
from helpers.tenants import CALLER_KEY, post_chat

LOOSE = {"free_mode_requests_per_minute": 1000, "free_mode_tokens_per_day": 10**9}


@pytest.fixture
def server(kind, moto_endpoint, fake):
    app, _ = keyed_app(kind, moto_endpoint, fake, openai_models="gpt-4o,gpt-4.1-mini", **LOOSE)
    with LiveServer(app) as live:
        yield live


def sdk(server, key: str) -> openai.OpenAI:
    """The real OpenAI SDK on the server, the gateway key in X-Api-Key (as on AWS)."""
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="unused", default_headers={"X-Api-Key": key}
    )


def test_a_key_uses_only_its_models_and_lists_only_those(server):
    key = create_key(server, models=["gpt-4o-mini"])["key"]
    assert chat(server, key).status_code == 200  # the default model, gpt-4o-mini
    refused = chat(server, key, model="gpt-4o")
    assert refused.status_code == 403 and code(refused) == "model_not_allowed"
    assert refused.json()["error"]["param"] == "model"
    client = sdk(server, key)
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert denied.value.code == "model_not_allowed"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    every = sdk(server, create_key(server, name="team-b")["key"])
    chats = {"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"}
    embedders = {"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}
    assert {m.id for m in every.models.list()} == chats | embedders


def test_a_key_past_its_rpm_is_a_429_with_retry_after(kind, moto_endpoint, fake):
    clock = FakeClock()
    app, _ = keyed_app(kind, moto_endpoint, fake, clock=clock, **LOOSE)
    with LiveServer(app) as server:
        key = create_key(server, rpm=3)["key"]
        first = [chat(server, key).status_code for _ in range(3)]
        clock.now += 20
        refused = chat(server, key)
        own_key = chat(server, key, free_mode=False, openai_api_key=CALLER_KEY)
        clock.now += 40  # the first three leave the window
        again = chat(server, key)
    assert first == [200, 200, 200]
    assert refused.status_code == 429 and code(refused) == "key_rate_limited"
    assert refused.headers["retry-after"] == "40"
    assert own_key.status_code == 429  # a key's rate counts every turn, whoever pays
    assert again.status_code == 200


def test_concurrent_requests_through_two_containers_get_exactly_the_keys_rpm(
    kind, moto_endpoint, fake
):
    first, shared = keyed_app(kind, moto_endpoint, fake, **LOOSE, max_concurrent_per_client=20)
    second, _ = keyed_app(kind, moto_endpoint, fake, shared=shared)
    with LiveServer(first) as one, LiveServer(second) as two:
        key = create_key(one, rpm=3)["key"]
        servers = [one, two] * 10
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            replies = list(pool.map(lambda s: chat(s, key), servers))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] * 3 + [429] * 17
    assert {code(r) for r in replies if r.status_code == 429} == {"key_rate_limited"}
    assert len(fake.seen) == 3


def test_a_key_past_its_tpm_waits_for_the_next_minute(kind, moto_endpoint, fake):
    clock = FakeClock(1_795_608_030.0)  # half a minute in
    app, _ = keyed_app(kind, moto_endpoint, fake, clock=clock, **LOOSE)
    with LiveServer(app) as server:
        key = create_key(server, tpm=300)["key"]
        too_big = chat(server, key, max_tokens=400)
        fake.enqueue(Step(usage={"output_tokens": 200}))
        fits = chat(server, key, max_tokens=200)  # really uses its 200
        over = chat(server, key, max_tokens=200)
        clock.now += 30
        next_minute = chat(server, key, max_tokens=200)
    assert too_big.status_code == 429 and code(too_big) == "key_rate_limited"
    assert "300 tokens a minute" in too_big.json()["error_message"]
    assert fits.status_code == 200
    assert over.status_code == 429 and over.headers["retry-after"] == "30"
    assert next_minute.status_code == 200


def test_concurrent_turns_never_take_a_key_past_its_budget(kind, moto_endpoint, fake):
    # As free mode's tenant budget (tests/usage): each turn's worst case is about 0.0006 USD
    # at max_tokens 1000 on gpt-4o-mini; 0.0075 USD fits a dozen; each really uses 1000.
    first, shared = keyed_app(
        kind, moto_endpoint, fake, **LOOSE, max_concurrent_requests=40, max_concurrent_per_client=40
    )
    second, _ = keyed_app(kind, moto_endpoint, fake, shared=shared)
    fake.enqueue(*[Step(usage={"output_tokens": 1000}) for _ in range(40)])
    with LiveServer(first) as one, LiveServer(second) as two:
        made = create_key(one, monthly_budget_usd=0.0075)
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            replies = list(
                pool.map(lambda s: chat(s, made["key"], max_tokens=1000), [one, two] * 20)
            )
        shown = admin(one, "GET", f"/keys/{made['id']}").json()
        usage = httpx.get(
            f"{one.url}/api/v1/usage", headers={"X-Api-Key": made["key"]}, timeout=30
        ).json()
    admitted = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 429]
    assert len(admitted) + len(refused) == 40 and 12 <= len(admitted) < 40
    assert {code(r) for r in refused} == {"budget_exceeded"}
    assert shown["spend_usd"] <= 0.0075 and shown["requests"] == len(admitted)
    assert usage["budget_usd"] == 0.0075 and usage["owner"] == made["owner"]


def test_a_keys_budget_overrides_the_tenant_budget(kind, moto_endpoint, fake):
    app, _ = keyed_app(kind, moto_endpoint, fake, tenant_monthly_budget_usd=0.0, **LOOSE)
    with LiveServer(app) as server:
        plain = post_chat(server, free_mode=True)  # CLIENT_API_KEYS: the tenant budget, 0
        key = create_key(server, monthly_budget_usd=1)["key"]
        keyed = chat(server, key)
    assert plain.status_code == 429 and code(plain) == "budget_exceeded"
    assert keyed.status_code == 200


def test_an_expired_key_is_a_401(kind, moto_endpoint, fake):
    clock = FakeClock()
    app, _ = keyed_app(kind, moto_endpoint, fake, clock=clock, **LOOSE)
    with LiveServer(app) as server:
        made = create_key(server, expires_at="2099-01-01T00:00:00Z")
        admin(server, "PATCH", f"/keys/{made['id']}", json={"expires_at": "2026-11-25T12:00:10Z"})
        clock.now = 1_795_608_009.0  # 2026-11-25T12:00:09Z
        before = chat(server, made["key"])
        clock.now += 1
        after = chat(server, made["key"])
        listed = admin(server, "GET", f"/keys/{made['id']}").json()
    assert before.status_code == 200
    assert after.status_code == 401 and code(after) == "key_expired"
    assert listed["status"] == "expired"


def test_a_key_without_paid_models_is_never_served_on_the_operators_account(server):
    key = create_key(server, paid_models=False)["key"]
    refused = chat(server, key)
    own = chat(server, key, free_mode=False, openai_api_key=CALLER_KEY)
    assert refused.status_code == 403 and code(refused) == "paid_models_not_allowed"
    assert own.status_code == 200 and own.json()["api_key_source"] == "user"


def test_client_api_keys_keep_working_beside_gateway_keys(server):
    key = create_key(server)["key"]
    assert post_chat(server, "client-1", free_mode=True).status_code == 200
    assert chat(server, key).status_code == 200
    made_up = chat(server, "llms_" + "x" * 43)
    other = post_chat(server, "not-a-client-key", free_mode=True)
    assert (made_up.status_code, code(made_up)) == (401, "invalid_client_key")
    assert (other.status_code, code(other)) == (401, "invalid_client_key")


def test_a_keys_usage_is_kept_under_its_owner_across_rotation(server):
    made = create_key(server)
    assert chat(server, made["key"]).status_code == 200
    new = admin(server, "POST", f"/keys/{made['id']}/rotate").json()["key"]
    assert chat(server, new).status_code == 200
    usage = httpx.get(f"{server.url}/api/v1/usage", headers={"X-Api-Key": new}, timeout=30).json()
    assert usage["owner"] == made["owner"] and usage["by_model"][0]["requests"] == 2


def test_a_keys_models_hold_through_model_aliases(kind, moto_endpoint, fake):
    """An alias (MODEL_ALIASES) is the model it names: allowed, listed and refused as that."""
    aliases = "claude-haiku-4-5=gpt-4o-mini,claude-opus-4-5=gpt-4o"
    app, _ = keyed_app(
        kind, moto_endpoint, fake, openai_models="gpt-4o", model_aliases=aliases, **LOOSE
    )
    with LiveServer(app) as server:
        key = create_key(server, models=["gpt-4o-mini"])["key"]
        assert chat(server, key, model="claude-haiku-4-5").status_code == 200
        refused = chat(server, key, model="claude-opus-4-5")
        assert refused.status_code == 403 and code(refused) == "model_not_allowed"
        assert {m.id for m in sdk(server, key).models.list()} == {"gpt-4o-mini", "claude-haiku-4-5"}
        by_alias = create_key(server, name="alias", models=["claude-opus-4-5"])["key"]
        assert chat(server, by_alias, model="claude-opus-4-5").status_code == 200
        assert {m.id for m in sdk(server, by_alias).models.list()} == {"gpt-4o", "claude-opus-4-5"}
