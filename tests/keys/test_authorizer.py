"""The Lambda authorizer on DynamoDB (moto): a working key is allowed with its owner and policy,
anything else is API Gateway's 401; the function then holds the key to its policy."""

import asyncio
import json
import os
import subprocess
import sys

import pytest
from invoke import LAMBDA_ENV, LambdaContext
from mangum import Mangum

from helpers.clock import FakeClock
from helpers.lambda_events import EVENTS
from helpers.server_process import FUNCTIONS
from helpers.settings import make_settings
from helpers.stores import dynamodb_table
from helpers.tenants import tenant_app
from llm_server.keys import authorizer
from llm_server.keys.admin import KeyAdmin
from llm_server.keys.records import KeyPolicy
from llm_server.stores.keys_dynamodb import DynamoDBKeyStore
from llm_server.usage.ledger import UsageLedger
from llm_server.web.identity import IdentityPolicy

YEAR_2100 = 4_102_444_800.0
METHOD_ARN = "arn:aws:execute-api:ap-northeast-2:123456789012:a1b2c3d4e5/dev/POST/api/v1/chat"


@pytest.fixture
def keys(moto_endpoint, monkeypatch):
    table, client = dynamodb_table(moto_endpoint)
    monkeypatch.setenv("DYNAMODB_TABLE", table)
    monkeypatch.setattr(authorizer, "_client", client)
    ledger = UsageLedger.from_settings(make_settings(), None)
    return KeyAdmin(DynamoDBKeyStore(table, client), ledger)


def make(admin: KeyAdmin, **policy) -> tuple[str, str]:
    key, secret = asyncio.run(admin.create("test", "team-a", KeyPolicy(**policy), {}))
    return key.id, secret


def authorize(secret: str | None, header: str = "X-Api-Key") -> dict:
    headers = {"Host": "example.com"} | ({header: secret} if secret is not None else {})
    event = {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers}
    return authorizer.handler(event, None)


def test_a_working_key_is_allowed_on_the_stage_with_its_owner_and_policy(keys):
    key_id, secret = make(keys, models=("gpt-4o-mini",), rpm=3, monthly_budget_usd=5.0)
    answer = authorize(secret, header="x-api-key")
    assert answer["principalId"] == f"gk:{key_id}"
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": "arn:aws:execute-api:ap-northeast-2:123456789012:a1b2c3d4e5/dev/*",
    }
    context = answer["context"]
    assert context["key_id"] == key_id and context["owner"] == f"gk:{key_id}"
    assert all(isinstance(v, str) for v in context.values())  # API Gateway takes no objects
    policy = KeyPolicy.from_json(context["policy"])
    assert (policy.models, policy.rpm, policy.monthly_budget_usd) == (("gpt-4o-mini",), 3, 5.0)
    assert answer["usageIdentifierKey"] == secret


def test_anything_but_a_working_key_is_api_gateways_401(keys):
    revoked_id, revoked = make(keys)
    asyncio.run(keys.revoke("test", revoked_id))
    rotated_id, rotated = make(keys)
    asyncio.run(keys.rotate("test", rotated_id, 0))
    _, expired = make(keys, expires_at=1.0)
    for secret in (None, "", "llms_" + "x" * 43, "not-a-key", revoked, rotated, expired):
        with pytest.raises(authorizer.Unauthorized, match=r"^Unauthorized$"):
            authorize(secret)


def test_its_cold_start_loads_no_web_framework():
    probe = (
        "import sys, llm_server.keys.authorizer as a; "
        "print([m for m in ('fastapi', 'pydantic', 'starlette', 'aws_lambda_powertools', "
        "'botocore.client', 'llm_server.app') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(FUNCTIONS)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def chat_event(context: dict, model: str, api_key_id: str | None = None) -> dict:
    event = json.loads((EVENTS / "chat.json").read_text(encoding="utf-8"))
    event["body"] = json.dumps({"user_message": "hi", "free_mode": True, "model": model})
    event["requestContext"]["identity"]["apiKeyId"] = api_key_id
    event["requestContext"]["authorizer"] = {**context, "integrationLatency": 12}
    return event


def test_the_function_holds_the_caller_to_the_policy_the_authorizer_passed(
    keys, moto_endpoint, fake, monkeypatch
):
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    key_id, secret = make(keys, models=("gpt-4o-mini",), rpm=1, expires_at=YEAR_2100)
    answer = authorize(secret)
    context = {"principalId": answer["principalId"], **answer["context"]}
    app, (settings, _, _) = tenant_app(
        "sqlite", moto_endpoint, fake, identity_source="gateway", openai_models="gpt-4o"
    )
    clock = FakeClock()
    app.state.identity = IdentityPolicy(settings, clock=clock)
    handler = Mangum(app, lifespan="off")
    # an API key id beside it (a usage plan kept as an edge throttle) is not the identity
    allowed = handler(chat_event(context, "gpt-4o-mini", api_key_id="edge-key"), LambdaContext())
    assert allowed["statusCode"] == 200, allowed["body"]
    usage = chat_event(context, "gpt-4o-mini")
    usage.update(httpMethod="GET", path="/api/v1/usage", resource="/api/v1/usage", body=None)
    assert json.loads(handler(usage, LambdaContext())["body"])["owner"] == f"gk:{key_id}"
    other = handler(chat_event(context, "gpt-4o"), LambdaContext())
    assert other["statusCode"] == 403 and "model_not_allowed" in other["body"]
    again = handler(chat_event(context, "gpt-4o-mini"), LambdaContext())
    assert again["statusCode"] == 429 and "key_rate_limited" in again["body"]
    clock.now = YEAR_2100  # its expires_at, whatever the authorizer's cache holds
    expired = handler(chat_event(context, "gpt-4o-mini"), LambdaContext())
    assert expired["statusCode"] == 401 and "key_expired" in expired["body"]
