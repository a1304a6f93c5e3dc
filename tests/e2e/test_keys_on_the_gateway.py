"""The gateway's keys through the emulated API Gateway: the authorizer, the IAM-authorised admin
API, and a key's limits as an operator hands one out (docs/keys.md)."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from botocore.exceptions import ClientError

from e2e.conftest import KEY_CACHE_SECONDS, NOVA
from helpers.aws_emulator import BUILD, CREDENTIALS, REGION, Stack, role_credentials, signed
from helpers.server_process import FUNCTIONS, ServerProcess


def tenant(stack: Stack, key: str, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{stack.api}{path}", headers={"x-api-key": key}, timeout=60, **kw)


def chat(stack: Stack, key: str, **fields) -> httpx.Response:
    body = {"user_message": "안녕하세요", "free_mode": True, **fields}
    return tenant(stack, key, "POST", "/api/v1/chat", json=body)


def iam_user(stack: Stack, allowed: bool) -> dict[str, str]:
    """Credentials of a new IAM user, granted execute-api:Invoke on the admin routes or not."""
    iam = stack.client("iam")
    name = f"operator-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    if allowed:
        account = stack.client("sts").get_caller_identity()["Account"]
        api_id = stack.outputs["ApiUrl"].split("//")[1].split(".")[0]
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "execute-api:Invoke",
                    "Resource": f"arn:aws:execute-api:{REGION}:{account}:{api_id}/dev/*/admin/*",
                }
            ],
        }
        iam.put_user_policy(
            UserName=name, PolicyName="admin-api", PolicyDocument=json.dumps(document)
        )
    return iam.create_access_key(UserName=name)["AccessKey"]


def test_the_admin_api_takes_iam_signed_calls_of_granted_principals_only(stack):
    unsigned = httpx.get(f"{stack.api}/admin/v1/keys", timeout=60)
    as_tenant = tenant(stack, stack.api_key, "GET", "/admin/v1/keys")
    not_granted = signed(stack, "GET", "/admin/v1/keys", credentials=iam_user(stack, False))
    assert [unsigned.status_code, as_tenant.status_code, not_granted.status_code] == [403] * 3
    operator = iam_user(stack, True)
    made = signed(stack, "POST", "/admin/v1/keys", {"name": "by-iam"}, credentials=operator)
    assert made.status_code == 201, made.text
    assert made.json()["key"] not in signed(stack, "GET", "/admin/v1/keys").text
    deadline = time.monotonic() + 10
    while not (actors := _admin_actors(stack)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(actor.startswith("iam:arn:aws:iam::") and "operator-" in actor for actor in actors)


def _admin_actors(stack: Stack) -> list[str]:
    """Who the chat function's log says made each admin action."""
    group = f"/aws/lambda/{stack.name}-chat"
    events = stack.client("logs").filter_log_events(logGroupName=group)["events"]
    lines = [json.loads(e["message"]) for e in events if '"admin action"' in e["message"]]
    return [line["actor"] for line in lines]


def test_an_operator_hands_out_a_key_for_one_model_3_a_minute_and_5_usd_a_month(stack):
    """The issue's story: create, use, watch the spend, rotate, revoke, through the gateway."""
    made = signed(
        stack,
        "POST",
        "/admin/v1/keys",
        {"name": "team-a", "models": ["gpt-4o-mini"], "rpm": 3, "monthly_budget_usd": 5},
    )
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    assert [chat(stack, key).status_code for _ in range(3)] == [200, 200, 200]
    limited = chat(stack, key)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "key_rate_limited"
    assert int(limited.headers["retry-after"]) > 0
    other = chat(stack, key, model=NOVA)
    assert other.status_code == 403 and other.json()["error"]["code"] == "model_not_allowed"
    models = tenant(stack, key, "GET", "/v1/models").json()["data"]
    assert [m["id"] for m in models] == ["gpt-4o-mini"]
    shown = signed(stack, "GET", f"/admin/v1/keys/{key_id}").json()
    assert (
        shown["requests"] == 3 and 0 < shown["spend_usd"] < 5 and shown["owner"] == f"gk:{key_id}"
    )
    usage = tenant(stack, key, "GET", "/api/v1/usage").json()
    assert usage["budget_usd"] == 5.0 and usage["owner"] == f"gk:{key_id}"
    with on_the_deployed_table(stack) as local:  # the operator's page, on the stack's table
        assert httpx.get(f"{local.url}/admin", timeout=30).status_code == 200
        watched = httpx.get(f"{local.url}/admin/v1/keys/{key_id}", headers=ADMIN, timeout=30)
        assert watched.json()["spend_usd"] == shown["spend_usd"]

    rotated = signed(stack, "POST", f"/admin/v1/keys/{key_id}/rotate").json()["key"]
    assert tenant(stack, rotated, "GET", "/v1/models").status_code == 200  # not cached: asked
    time.sleep(KEY_CACHE_SECONDS + 0.5)  # the old key's cached answer has lapsed
    assert tenant(stack, key, "GET", "/v1/models").status_code == 401

    assert signed(stack, "DELETE", f"/admin/v1/keys/{key_id}").json()["status"] == "revoked"
    time.sleep(KEY_CACHE_SECONDS + 0.5)  # the bound docs/keys.md states: KeyCacheSeconds
    assert tenant(stack, rotated, "GET", "/v1/models").status_code == 401


ADMIN = {"Authorization": "Bearer e2e-admin-key"}


def on_the_deployed_table(stack: Stack) -> ServerProcess:
    """`python -m llm_server` on the operator's machine, on the stack's table (docs/keys.md: the
    page for a deployed stack), with the emulator's root credentials as the operator's."""
    layer = BUILD / "DependenciesLayer" / "python"
    return ServerProcess(
        PYTHONPATH=f"{FUNCTIONS}:{layer}",
        LLM_PROVIDER="openai",
        STORE="dynamodb",
        DYNAMODB_TABLE=stack.outputs["TableName"],
        AWS_ENDPOINT_URL=stack.endpoint,
        AWS_DEFAULT_REGION=REGION,
        ADMIN_API_KEY=ADMIN["Authorization"].split()[1],
        **CREDENTIALS,
    )


def test_the_authorizers_role_reads_key_hash_items_and_writes_nothing(stack):
    """GetItem only (its dynamodb:LeadingKeys condition, the hash items alone, is checked in
    tests/deploy: ministack does not evaluate that key)."""
    resources = stack.client("cloudformation").describe_stack_resources(StackName=stack.name)
    arn = next(
        r["PhysicalResourceId"]
        for r in resources["StackResources"]
        if r["LogicalResourceId"] == "KeyAuthorizerFunction"
    )
    dynamodb = stack.client("dynamodb", **role_credentials(stack, arn))
    table = stack.outputs["TableName"]
    key = {"pk": {"S": "gkeyhash#" + "0" * 64}, "sk": {"S": "gkeyhash"}}
    assert "Item" not in dynamodb.get_item(TableName=table, Key=key)
    for denied in (
        lambda: dynamodb.put_item(TableName=table, Item={**key, "record": {"S": "{}"}}),
        lambda: dynamodb.delete_item(TableName=table, Key=key),
        lambda: dynamodb.scan(TableName=table),
        lambda: dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "gkey"}},
        ),
    ):
        with pytest.raises(ClientError) as refused:
            denied()
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
