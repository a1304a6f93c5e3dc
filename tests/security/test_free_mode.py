"""Free mode spends the server's key: only for known clients, within quotas that hold."""

import concurrent.futures
import json
import os
import time

import httpx
from invoke import LAMBDA_ENV, LambdaContext
from mangum import Mangum

from helpers.clock import FakeClock
from helpers.fake_openai import Step
from helpers.lambda_events import EVENTS
from helpers.live_server import LiveServer
from helpers.tenants import CALLER_KEY, post_chat, tenant_app
from llm_server.stores.factory import quota_store
from llm_server.utils.redact import key_fingerprint

FREE = {"free_mode": True}


def tokens_used_today(shared, clock, client="client-1"):
    settings, sessions, _ = shared
    store = quota_store(settings, getattr(sessions, "client", None))
    day = time.strftime("%Y-%m-%d", time.gmtime(clock()))
    return store.used(f"key:{key_fingerprint(client)}", f"tpd#{day}")


def test_free_mode_serves_only_known_client_keys(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake)
    with LiveServer(app) as server:
        anonymous = post_chat(server, client=None, **FREE)
        made_up = [post_chat(server, f"made-up-{i}", **FREE) for i in range(15)]
        known = post_chat(server, "client-1", **FREE)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "client_credential_required"
    assert anonymous.json()["error"]["param"] == "X-Api-Key"
    assert {r.status_code for r in made_up} == {401}
    assert made_up[0].json()["error"]["code"] == "invalid_client_key"
    assert known.status_code == 200 and known.json()["api_key_source"] == "server"
    assert len(fake.seen) == 1


def test_without_client_api_keys_free_mode_is_refused_saying_so(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, client_api_keys="")
    with LiveServer(app) as server:
        refused = post_chat(server, "anything", **FREE)
        own_key = post_chat(server, "anything", openai_api_key=CALLER_KEY)
    assert refused.status_code == 401 and "CLIENT_API_KEYS" in refused.json()["error_message"]
    assert own_key.status_code == 200 and own_key.json()["api_key_source"] == "user"


def test_on_aws_only_the_gateway_key_id_opens_free_mode(kind, moto_endpoint, fake, monkeypatch):
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    app, _ = tenant_app(
        kind, moto_endpoint, fake, identity_source="gateway", free_mode_requests_per_minute=1
    )
    handler = Mangum(app, lifespan="off")
    event = json.loads((EVENTS / "chat.json").read_text(encoding="utf-8"))
    event["body"] = json.dumps({"user_message": "hi", **FREE})
    event["requestContext"]["identity"]["apiKeyId"] = "k1abc"
    assert handler(event, LambdaContext())["statusCode"] == 200
    assert handler(event, LambdaContext())["statusCode"] == 429
    event["requestContext"]["identity"]["apiKeyId"] = "k2def"
    assert handler(event, LambdaContext())["statusCode"] == 200
    event["requestContext"]["identity"]["apiKeyId"] = None  # an HTTP API or a Function URL
    event["headers"]["X-Api-Key"] = "client-1"
    refused = handler(event, LambdaContext())
    assert refused["statusCode"] == 401
    assert "API Gateway API key" in json.loads(refused["body"])["error_message"]


def test_two_containers_share_the_per_minute_limit(kind, moto_endpoint, fake):
    clock = FakeClock()
    first, shared = tenant_app(
        kind, moto_endpoint, fake, clock=clock, free_mode_requests_per_minute=2
    )
    second, _ = tenant_app(kind, moto_endpoint, fake, clock=clock, shared=shared)
    with LiveServer(first) as one, LiveServer(second) as two:
        assert post_chat(one, **FREE).status_code == 200
        clock.now += 10
        assert post_chat(two, **FREE).status_code == 200
        refused = post_chat(one, **FREE)
        other_client = post_chat(two, "client-2", **FREE)
        own_key = post_chat(one, openai_api_key=CALLER_KEY)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "free_mode_rate_limited"
    assert refused.headers["retry-after"] == "50"  # when the first request leaves the window
    assert other_client.status_code == 200
    assert own_key.status_code == 200 and own_key.json()["api_key_source"] == "user"
    assert len(fake.seen) == 4


def test_the_minute_window_slides_across_the_minute_boundary(kind, moto_endpoint, fake):
    clock = FakeClock(1_795_608_059.0)  # one second before a calendar minute ends
    app, _ = tenant_app(kind, moto_endpoint, fake, clock=clock, free_mode_requests_per_minute=3)
    with LiveServer(app) as server:
        burst = [post_chat(server, **FREE).status_code for _ in range(3)]
        clock.now += 2  # a new calendar minute: a fixed window would admit 3 more here
        next_minute = [post_chat(server, **FREE).status_code for _ in range(3)]
        clock.now += 58  # 60 s after the burst: the window has room again
        later = post_chat(server, **FREE).status_code
    assert burst == [200, 200, 200]
    assert next_minute == [429, 429, 429]
    assert later == 200


def test_concurrent_requests_cannot_overspend_the_daily_quota(kind, moto_endpoint, fake):
    clock = FakeClock()
    app, shared = tenant_app(
        kind,
        moto_endpoint,
        fake,
        clock=clock,
        free_mode_tokens_per_day=1000,
        free_mode_requests_per_minute=100,
        max_concurrent_requests=20,
        max_concurrent_per_client=20,
    )
    fake.enqueue(*[Step(delay=1.0)] * 10)
    with LiveServer(app) as server, concurrent.futures.ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: post_chat(server, max_tokens=400, **FREE), range(10)))
    admitted = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 429]
    assert len(admitted) == 2 and len(refused) == 8  # 2 x (400 + input) fit in 1,000
    assert {r.json()["error"]["code"] for r in refused} == {"free_mode_quota_exceeded"}
    used = tokens_used_today(shared, clock)
    assert used == sum(r.json()["total_tokens_used"] for r in admitted)  # settled: real usage


def test_a_dropped_stream_is_settled_with_what_it_generated(kind, moto_endpoint, fake):
    clock = FakeClock()
    app, shared = tenant_app(kind, moto_endpoint, fake, clock=clock)
    fake.enqueue(Step(stall_after=1, stall=3.0))
    body = {"user_message": "tell me a long story", "stream": True, "max_tokens": 500, **FREE}
    with LiveServer(app) as server:
        with httpx.stream(
            "POST", f"{server.url}/api/v1/chat", json=body, headers={"X-Api-Key": "client-1"}
        ) as response:
            first = next(response.iter_lines())  # one delta, then the client goes away
        deadline = time.monotonic() + 10  # reserved: input and max_tokens, until settled
        while tokens_used_today(shared, clock) >= 500 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server notices the disconnect and settles
        used = tokens_used_today(shared, clock)
    assert first.startswith("event: delta")
    assert 0 < used < 500  # the input and the delta sent, not nothing and not the reservation


def test_a_cache_hit_in_free_mode_needs_the_credential_and_counts(kind, moto_endpoint, fake):
    app, _ = tenant_app(
        kind, moto_endpoint, fake, cache_enabled=True, free_mode_requests_per_minute=2
    )
    body = {"user_message": "2+2?", "temperature": 0, **FREE}
    with LiveServer(app) as server:
        first = post_chat(server, **body)
        anonymous = post_chat(server, client=None, **body)
        hit = post_chat(server, **body)
        over = post_chat(server, **body)
    assert first.headers["x-cache"] == "MISS" and hit.headers["x-cache"] == "HIT"
    assert anonymous.status_code == 401
    assert over.status_code == 429 and over.json()["error"]["code"] == "free_mode_rate_limited"
    assert len(fake.seen) == 1


def test_free_mode_can_be_switched_off(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, free_mode_enabled=False)
    with LiveServer(app) as server:
        response = post_chat(server, **FREE)
    assert response.status_code == 401
    assert "switched off" in response.json()["error_message"]
    assert fake.seen == []


def test_forty_racing_requests_of_one_client_are_all_admitted_under_the_limit(moto_endpoint):
    """The minute window is a versioned write on DynamoDB: every racer must get in, not a 429."""
    from helpers.stores import dynamodb_table
    from llm_server.stores.quotas import DynamoDBQuotaStore

    table, client = dynamodb_table(moto_endpoint)
    store = DynamoDBQuotaStore(table, client)
    now = time.time()
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        waits = list(
            pool.map(lambda i: store.hit("key:racer", "rpm", 1000, 60, now + i / 1e3), range(40))
        )
    assert waits == [0.0] * 40
    key = {"pk": {"S": "quota#key:racer"}, "sk": {"S": "rpm"}}
    stamps = client.get_item(TableName=table, Key=key)["Item"]["stamps"]["S"]
    assert len(json.loads(stamps)) == 40  # each racer's admission was written, none lost
