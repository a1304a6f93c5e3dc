"""The two stores under test: the embedded SQLite file and DynamoDB on moto's server."""

from __future__ import annotations

import time
import uuid

import boto3

from helpers.settings import make_settings
from llm_server.native_api.idempotency import IdempotencyGuard
from llm_server.stores.expiry import Clock
from llm_server.stores.factory import idempotency_layer, session_store


def dynamodb_table(endpoint: str) -> tuple[str, object]:
    """Create a table shaped like template.yaml's on moto; return its name and a client."""
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="ap-northeast-2")
    name = f"llm-server-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    return name, client


def settings_and_stores(kind: str, moto_endpoint: str, clock: Clock = time.time, **overrides):
    """Settings for `kind` ("sqlite" or "dynamodb"), its session store (on `clock`) and
    idempotency guard."""
    client = None
    if kind == "dynamodb":
        table, client = dynamodb_table(moto_endpoint)
        overrides.update(store="dynamodb", dynamodb_table=table)
    settings = make_settings(**overrides)
    guard = IdempotencyGuard(idempotency_layer(settings, client), settings.idempotency_ttl_seconds)
    return settings, session_store(settings, client, clock), guard
