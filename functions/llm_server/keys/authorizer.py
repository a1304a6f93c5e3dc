"""The REST API's Lambda authorizer: the caller's `X-Api-Key`, checked against the keys' hashes.

REQUEST type, its identity source the `X-Api-Key` header (API Gateway answers 401 itself when the
header is missing, and caches each answer by it for `KeyCacheSeconds`). One consistent GetItem of
the secret's hash item (`stores/keys_dynamodb.py`), which holds the key's record: an unknown,
rotated-out, revoked or expired key raises `Unauthorized` (API Gateway's 401); a working one is
allowed on the whole stage (one cached answer serves every route) with its id, owner and policy
as the context the functions read (`web/identity.py`), and the key itself as
`usageIdentifierKey`, for an API Gateway usage plan the operator may keep as an edge throttle.

A revoked key therefore keeps working at most `KeyCacheSeconds` (the cached answer), plus the
GetItem's consistency (none: it is a consistent read). Its cold start imports no web framework:
botocore (in the Lambda runtime) and the key records only; its role may read the hash items of
the table and nothing else (IAM `dynamodb:LeadingKeys`).
"""

from __future__ import annotations

import os
import time
from typing import Any

from llm_server.keys.records import secret_hash
from llm_server.stores.keys_dynamodb import hash_key, key_of_hash_item

_client: Any = None


class Unauthorized(Exception):
    """API Gateway turns this exact message into its 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Allow a working key with its context; refuse anything else."""
    secret = _header(event, "x-api-key")
    if not secret:
        raise Unauthorized
    hashed = secret_hash(secret)
    item = _dynamodb().get_item(
        TableName=os.environ["DYNAMODB_TABLE"], Key=hash_key(hashed), ConsistentRead=True
    )
    key = key_of_hash_item(item.get("Item"))
    if key is None or key.refusal(hashed, time.time()) is not None:
        raise Unauthorized
    return {
        "principalId": key.owner,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _whole_stage(event["methodArn"]),
                }
            ],
        },
        "context": {"key_id": key.id, "owner": key.owner, "policy": key.policy.to_json()},
        "usageIdentifierKey": secret,
    }


def _header(event: dict[str, Any], name: str) -> str:
    """A request header, whatever its case (a REQUEST authorizer's event keeps the client's)."""
    headers = event.get("headers") or {}
    return next((v for k, v in headers.items() if k.lower() == name and v), "")


def _whole_stage(method_arn: str) -> str:
    """`arn:...:api-id/stage/METHOD/path` as `arn:...:api-id/stage/*`: every route of the stage."""
    api, stage = method_arn.split("/")[:2]
    return f"{api}/{stage}/*"


def _dynamodb() -> Any:
    """One client for the environment's life (made on first use, so a cold start pays once)."""
    global _client
    if _client is None:
        from llm_server.stores.dynamodb import dynamodb_client

        _client = dynamodb_client()
    return _client
