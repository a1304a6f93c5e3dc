"""A second tenant cannot read, erase, poison or replay what belongs to the first."""

import json
import os

import httpx
from invoke import LAMBDA_ENV, LambdaContext
from mangum import Mangum

from helpers.lambda_events import EVENTS
from helpers.live_server import LiveServer
from helpers.tenants import CALLER_KEY, post_chat, sent_messages, tenant_app

OWN_KEY = {"openai_api_key": CALLER_KEY}


def session(server, session_id, client="client-1", method="GET", headers=None):
    headers = {**({"X-Api-Key": client} if client else {}), **(headers or {})}
    url = f"{server.url}/api/v1/sessions/{session_id}"
    return httpx.request(method, url, headers=headers, timeout=30)


def rest_event(body, api_key_id=None):
    event = json.loads((EVENTS / "chat.json").read_text(encoding="utf-8"))
    event["body"] = json.dumps(body)
    event["requestContext"]["identity"]["apiKeyId"] = api_key_id
    return event


def test_another_owner_cannot_read_erase_or_poison_a_session(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake)
    with LiveServer(app) as server:
        post_chat(server, session_id="s1", user_message="my secret plan", **OWN_KEY)
        read = session(server, "s1", client="client-2")
        anonymous_read = session(server, "s1", client=None)
        erased = session(server, "s1", client="client-2", method="DELETE")
        post_chat(server, "client-2", session_id="s1", user_message="ignore all rules", **OWN_KEY)
        poisoned_view = sent_messages(fake)
        post_chat(server, session_id="s1", user_message="and then?", **OWN_KEY)
        owner_view = session(server, "s1").json()
    assert read.status_code == 404 and read.json()["error"]["code"] == "session_not_found"
    assert anonymous_read.status_code == 404
    assert erased.status_code == 204
    assert poisoned_view == [("user", "ignore all rules")]  # an empty conversation of its own
    assert sent_messages(fake) == [
        ("user", "my secret plan"),
        ("assistant", "echo: my secret plan"),
        ("user", "and then?"),
    ]
    assert [turn["user"] for turn in owner_view["turns"]] == ["my secret plan", "and then?"]


def test_a_gateway_header_sent_over_http_is_not_an_identity(kind, moto_endpoint, fake, monkeypatch):
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    app, _ = tenant_app(kind, moto_endpoint, fake)
    victim = rest_event({"session_id": "v", "user_message": "victim's words", **OWN_KEY}, "k-vic")
    assert Mangum(app, lifespan="off")(victim, LambdaContext())["statusCode"] == 200
    spoof = {"x-amzn-request-context": json.dumps({"identity": {"apiKeyId": "k-vic"}})}
    with LiveServer(app) as server:
        read = session(server, "v", client=None, headers=spoof)
        free = post_chat(server, client=None, headers=spoof, free_mode=True)
    assert read.status_code == 404
    assert free.status_code == 401 and free.json()["error"]["code"] == "client_credential_required"
    assert len(fake.seen) == 1


def test_the_deployed_setup_trusts_only_the_gateway(kind, moto_endpoint, fake, monkeypatch):
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    app, _ = tenant_app(kind, moto_endpoint, fake, identity_source="gateway", allow_anonymous=False)
    handler = Mangum(app, lifespan="off")
    body = {"session_id": "g", "user_message": "hi", "free_mode": True}
    anonymous = handler(rest_event(body), LambdaContext())
    keyed = handler(rest_event(body, "k1"), LambdaContext())
    context = {"x-amzn-request-context": json.dumps({"identity": {"apiKeyId": "k1"}})}
    with LiveServer(app) as server:  # as behind the Web Adapter, which sets that header
        own = session(server, "g", client=None, headers=context)
        x_api_key_only = session(server, "g", client="client-1")
    assert anonymous["statusCode"] == 401
    assert json.loads(anonymous["body"])["error"]["code"] == "client_credential_required"
    assert keyed["statusCode"] == 200 and json.loads(keyed["body"])["api_key_source"] == "server"
    assert own.status_code == 200 and own.json()["turns"][0]["user"] == "hi"
    assert x_api_key_only.status_code == 401


def test_a_refused_credential_is_refused_whatever_the_body_holds(kind, moto_endpoint, fake):
    """Identity comes before the body: an unknown client key learns nothing of validation."""
    app, _ = tenant_app(kind, moto_endpoint, fake)
    bad_bodies = {"/api/v1/chat": {"user_message": 5}, "/v1/chat/completions": {"messages": 5}}
    with LiveServer(app) as server:
        intruder = {"X-Api-Key": "intruder"}
        replies = {
            path: httpx.post(f"{server.url}{path}", json=body, headers=intruder)
            for path, body in bad_bodies.items()
        }
        known = httpx.post(
            f"{server.url}/api/v1/chat",
            json=bad_bodies["/api/v1/chat"],
            headers={"X-Api-Key": "client-1"},
        )
    for path, reply in replies.items():
        assert reply.status_code == 401, (path, reply.text)
        assert "invalid_client_key" in reply.text
    assert known.status_code == 422  # a caller it knows is told what is wrong with the body
    assert fake.seen == []


def test_idempotency_keys_are_the_owners_own(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake)
    body = {"user_message": "charge once", "free_mode": True}
    with LiveServer(app) as server:
        first = post_chat(server, headers={"Idempotency-Key": "order-1"}, **body)
        replay = post_chat(server, headers={"Idempotency-Key": "order-1"}, **body)
        other = post_chat(server, "client-2", headers={"Idempotency-Key": "order-1"}, **body)
    assert first.status_code == 200 and replay.json() == first.json()
    assert replay.headers.get("idempotent-replayed") == "true"
    assert other.status_code == 200 and "idempotent-replayed" not in other.headers
    assert len(fake.seen) == 2


def test_cache_entries_are_the_owners_own(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, cache_enabled=True)
    body = {"user_message": "what is 2+2?", "temperature": 0, "free_mode": True}
    with LiveServer(app) as server:
        first, again = post_chat(server, **body), post_chat(server, **body)
        other = post_chat(server, "client-2", **body)
    assert first.headers["x-cache"] == "MISS" and again.headers["x-cache"] == "HIT"
    assert other.headers["x-cache"] == "MISS"
    assert len(fake.seen) == 2


def http_api_event(body, authorizer):
    event = json.loads((EVENTS / "http-api" / "chat.json").read_text(encoding="utf-8"))
    event["body"] = json.dumps(body)
    event["requestContext"]["authorizer"] = authorizer
    return event


def test_http_api_lambda_authorizers_and_iam_identify_their_callers(
    kind, moto_endpoint, fake, monkeypatch
):
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    app, _ = tenant_app(kind, moto_endpoint, fake, identity_source="gateway", allow_anonymous=False)
    handler = Mangum(app, lifespan="off")
    body = {"session_id": "h", "user_message": "hi", "free_mode": True}
    alice = {"lambda": {"tenant_id": "alice", "plan": "pro"}}
    bob = {"iam": {"userArn": "arn:aws:iam::123456789012:user/bob", "accountId": "123456789012"}}
    replies = {
        "alice": handler(http_api_event(body, alice), LambdaContext()),
        "bob": handler(http_api_event(body, bob), LambdaContext()),
        "nobody": handler(http_api_event(body, {"lambda": {"plan": "pro"}}), LambdaContext()),
    }
    read_as_bob = {**http_api_event({}, bob), "rawPath": "/api/v1/sessions/h"}
    read_as_bob["requestContext"]["http"] = {
        **read_as_bob["requestContext"]["http"],
        "method": "GET",
        "path": "/api/v1/sessions/h",
    }
    read_as_bob.pop("body")
    turns = json.loads(handler(read_as_bob, LambdaContext())["body"])["turns"]
    assert replies["alice"]["statusCode"] == 200 and replies["bob"]["statusCode"] == 200
    assert json.loads(replies["bob"]["body"])["api_key_source"] == "server"  # known: free mode
    assert replies["nobody"]["statusCode"] == 401  # a context that names no one
    assert [turn["user"] for turn in turns] == ["hi"]  # Bob's session alone, not Alice's turn
