"""The admin API: only the operator may call it; keys are made, listed, changed, rotated and
revoked through it, a secret is shown once and only its hash is kept."""

import json
import os
import sqlite3

import httpx
import pytest
from invoke import LAMBDA_ENV, LambdaContext
from mangum import Mangum

from helpers.clock import FakeClock
from helpers.gateway_keys import ADMIN, ADMIN_KEY, admin, chat, code, create_key, keyed_app
from helpers.lambda_events import EVENTS
from helpers.live_server import LiveServer
from helpers.logs import capture_logs
from llm_server.keys.records import secret_hash


@pytest.fixture
def server(kind, moto_endpoint, fake):
    app, shared = keyed_app(kind, moto_endpoint, fake)
    with LiveServer(app) as live:
        live.shared = shared
        yield live


def stored_bytes(server) -> str:
    """Everything the store holds, as text: the SQLite file's tables, or a Scan of the table."""
    settings, sessions, _ = server.shared
    if settings.store == "sqlite":
        with sqlite3.connect(settings.store_path) as db:
            rows = db.execute("SELECT record FROM gateway_keys").fetchall()
            rows += db.execute("SELECT hash, id FROM gateway_key_hashes").fetchall()
        return json.dumps(rows)
    return json.dumps(sessions.client.scan(TableName=settings.dynamodb_table)["Items"])


def test_without_admin_api_key_there_is_no_admin_api(moto_endpoint, fake):
    app, _ = keyed_app("sqlite", moto_endpoint, fake, admin_api_key="")
    with LiveServer(app) as live:
        answer = admin(live, "GET", "/keys")
    assert answer.status_code == 404 and code(answer) == "not_found"


def test_only_the_admin_key_opens_the_admin_api(server):
    made = create_key(server)
    refusals = [
        httpx.get(f"{server.url}/admin/v1/keys", headers=headers, timeout=30)
        for headers in (
            {},
            {"Authorization": f"Bearer {ADMIN_KEY}x"},
            {"Authorization": f"Bearer {made['key']}"},  # a tenant's key is no admin key
            {"X-Api-Key": ADMIN_KEY},
            {"Authorization": ADMIN_KEY},
        )
    ]
    assert [r.status_code for r in refusals] == [401] * 5
    assert {code(r) for r in refusals} == {"invalid_admin_key"}
    assert refusals[0].json()["error"]["param"] == "Authorization"


def test_a_key_is_made_with_its_secret_shown_once_and_only_its_hash_kept(server):
    made = create_key(
        server, models=["gpt-4o-mini"], rpm=3, monthly_budget_usd=5, metadata={"team": "a"}
    )
    secret = made["key"]
    assert secret.startswith("llms_") and len(secret) == 48 and made["prefix"] == secret[:12]
    assert (made["models"], made["rpm"], made["monthly_budget_usd"]) == (["gpt-4o-mini"], 3, 5.0)
    assert made["metadata"] == {"team": "a"} and made["status"] == "active"
    assert made["owner"] == f"gk:{made['id']}"
    listed = admin(server, "GET", "/keys").text
    shown = admin(server, "GET", f"/keys/{made['id']}").text
    stored = stored_bytes(server)
    for text in (listed, shown, stored):
        assert secret not in text and secret[12:] not in text
    assert secret_hash(secret) in stored
    assert secret_hash(secret) not in listed + shown
    assert chat(server, secret).status_code == 200


def test_the_list_comes_in_pages_oldest_first(server):
    ids = [create_key(server, name=f"team-{i}")["id"] for i in range(3)]
    first = admin(server, "GET", "/keys", params={"limit": 2}).json()
    second = admin(server, "GET", "/keys", params={"limit": 2, "after": first["next"]}).json()
    assert [k["id"] for k in first["data"]] == ids[:2]
    assert [k["id"] for k in second["data"]] == ids[2:] and second["next"] is None
    assert all("key" not in view for view in first["data"] + second["data"])


def test_patch_changes_the_fields_it_names_and_null_lifts_a_limit(server):
    made = create_key(server, models=["gpt-4o-mini"], rpm=3, tpm=1000, monthly_budget_usd=5)
    changed = admin(
        server,
        "PATCH",
        f"/keys/{made['id']}",
        json={
            "rpm": 10,
            "tpm": None,
            "paid_models": False,
            "name": "team-b",
            "expires_at": "2099-01-01T00:00:00Z",
            "metadata": {"cost_center": "42"},
        },
    )
    assert changed.status_code == 200, changed.text
    view = changed.json()
    assert (view["rpm"], view["tpm"], view["paid_models"], view["name"]) == (
        10,
        None,
        False,
        "team-b",
    )
    assert (view["models"], view["monthly_budget_usd"]) == (["gpt-4o-mini"], 5.0)  # unchanged
    assert view["expires_at"] == "2099-01-01T00:00:00Z" and view["metadata"] == {
        "cost_center": "42"
    }
    again = admin(server, "PATCH", f"/keys/{made['id']}", json={"models": None})
    assert again.json()["models"] is None and again.json()["rpm"] == 10


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"rpm": 0}, "rpm"),
        ({"tpm": -1}, "tpm"),
        ({"monthly_budget_usd": -0.01}, "monthly_budget_usd"),
        ({"models": []}, "models"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),  # in the past
        ({"rate": 3}, "rate"),
        ({"owner": "bad owner"}, "owner"),
        ({"secret": "short"}, "secret"),
    ],
)
def test_a_bad_policy_field_is_a_422_naming_it(server, body, param):
    refused = admin(server, "POST", "/keys", json={"name": "team-a", **body})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["param"] == param


def test_rotation_stops_the_old_secret_at_once_and_keeps_the_owner(server):
    made = create_key(server)
    rotated = admin(server, "POST", f"/keys/{made['id']}/rotate")
    assert rotated.status_code == 200
    new = rotated.json()
    assert (
        new["key"] != made["key"]
        and new["owner"] == made["owner"]
        and new["prefix"] == new["key"][:12]
    )
    old = chat(server, made["key"])
    assert old.status_code == 401 and code(old) == "invalid_client_key"
    assert chat(server, new["key"]).status_code == 200


def test_a_rotation_with_grace_keeps_the_old_secret_until_then(kind, moto_endpoint, fake):
    clock = FakeClock()
    app, _ = keyed_app(kind, moto_endpoint, fake, clock=clock)
    with LiveServer(app) as server:
        made = create_key(server)
        rotated = admin(server, "POST", f"/keys/{made['id']}/rotate", json={"grace_seconds": 600})
        new = rotated.json()["key"]
        clock.now += 599
        during = chat(server, made["key"]).status_code
        clock.now += 2
        after = chat(server, made["key"])
        assert (during, after.status_code, code(after)) == (200, 401, "invalid_client_key")
        assert chat(server, new).status_code == 200


def test_a_revoked_key_stops_at_once_and_stays_revoked(server):
    made = create_key(server)
    assert chat(server, made["key"]).status_code == 200
    revoked = admin(server, "DELETE", f"/keys/{made['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = chat(server, made["key"])
    assert refused.status_code == 401 and code(refused) == "key_revoked"
    for method, path in (("PATCH", ""), ("POST", "/rotate")):
        again = admin(server, method, f"/keys/{made['id']}{path}", json={})
        assert again.status_code == 409 and code(again) == "key_revoked"
    assert admin(server, "DELETE", f"/keys/{made['id']}").status_code == 200


def test_an_unknown_key_is_a_404(server):
    missing = admin(server, "GET", "/keys/0123456789abcdef0123")
    assert missing.status_code == 404 and code(missing) == "key_not_found"
    malformed = admin(server, "GET", "/keys/..%2fetc")
    assert malformed.status_code in (404, 422)


def test_each_key_shows_this_months_spend_and_each_days(server):
    made = create_key(server)
    assert chat(server, made["key"]).status_code == 200
    assert chat(server, made["key"], model="gpt-4o").status_code == 200
    shown = admin(server, "GET", f"/keys/{made['id']}", params={"days": 7}).json()
    assert shown["requests"] == 2 and shown["spend_usd"] > 0
    assert shown["input_tokens"] > 0 and shown["output_tokens"] > 0
    assert len(shown["daily"]) == 7 and shown["daily"][-1]["spend_usd"] == shown["spend_usd"]
    listed = admin(server, "GET", "/keys").json()["data"]
    assert listed[0]["spend_usd"] == shown["spend_usd"]


def test_every_admin_action_is_logged_with_who_did_it_and_never_the_secret(server):
    with capture_logs() as logs:
        made = create_key(server)
        admin(server, "PATCH", f"/keys/{made['id']}", json={"rpm": 5})
        rotated = admin(server, "POST", f"/keys/{made['id']}/rotate").json()
        admin(server, "DELETE", f"/keys/{made['id']}")
    actions = [r for r in logs.records() if r.get("message") == "admin action"]
    assert [a["admin_action"] for a in actions] == ["create", "update", "rotate", "revoke"]
    assert {a["actor"] for a in actions} == {"admin key@127.0.0.1"}
    assert {a["key_id"] for a in actions} == {made["id"]}
    for secret in (made["key"], rotated["key"], ADMIN_KEY):
        assert secret not in logs.text
    assert ADMIN["Authorization"] not in logs.text


def admin_event(identity: dict, authorizer: dict | None = None) -> dict:
    """A REST API event for `POST /admin/v1/keys` with this request context."""
    event = json.loads((EVENTS / "chat.json").read_text(encoding="utf-8"))
    event.update(path="/admin/v1/keys", resource="/admin/v1/keys", body=json.dumps({"name": "t"}))
    event["requestContext"].update(path="/dev/admin/v1/keys", resourcePath="/admin/v1/keys")
    event["requestContext"]["identity"].update(identity)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    return event


def test_on_aws_the_admin_api_takes_the_iam_principal_api_gateway_verified(
    moto_endpoint, fake, monkeypatch
):
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    app, _ = keyed_app(
        "sqlite", moto_endpoint, fake, identity_source="gateway", admin_iam=True, admin_api_key=""
    )
    handler = Mangum(app, lifespan="off")
    operator = "arn:aws:iam::123456789012:user/operator"
    with capture_logs() as logs:
        made = handler(admin_event({"userArn": operator}), LambdaContext())
    assert made["statusCode"] == 201, made["body"]
    (action,) = [r for r in logs.records() if r.get("message") == "admin action"]
    assert action["actor"] == f"iam:{operator}"
    tenant = {"principalId": "gk:x", "key_id": "x", "owner": "gk:x", "policy": "{}"}
    for refused in (
        handler(admin_event({}), LambdaContext()),  # no IAM principal: not an AWS_IAM route
        handler(admin_event({"userArn": operator}, tenant), LambdaContext()),  # a tenant's
    ):
        assert refused["statusCode"] == 403
        assert json.loads(refused["body"])["error"]["code"] == "admin_forbidden"


def test_an_existing_credential_is_imported_under_its_owner_and_never_echoed(server):
    credential = "Ab3" * 14  # an API Gateway key's value: 42 characters, not ours
    body = {"name": "old-tenant", "secret": credential, "owner": "apikey:k1abc"}
    imported = admin(server, "POST", "/keys", json=body)
    assert imported.status_code == 201, imported.text
    assert credential not in imported.text and imported.json()["key"] is None
    assert imported.json()["owner"] == "apikey:k1abc" and imported.json()["prefix"] == "Ab3A"
    again = admin(server, "POST", "/keys", json={**body, "name": "twice"})
    assert again.status_code == 409 and code(again) == "key_exists"
