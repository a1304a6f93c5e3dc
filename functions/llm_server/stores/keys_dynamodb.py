"""The gateway's keys in the shared DynamoDB table.

- `pk = gkey`, `sk = <id>`: each key's record (one partition: the operator lists them in pages;
  nobody else reads it);
- `pk = gkeyhash#<sha256>`, `sk = gkeyhash`: one item per secret that still works, holding a copy
  of its key's record, so the Lambda authorizer finds a key and its policy in one GetItem by
  the hash of what the caller sent, and may read nothing else (IAM `dynamodb:LeadingKeys`).

Every write of a record writes its hash items in the same transaction, guarded by the record's
version; a hash item of a secret in a rotation's grace period expires by TTL after it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from llm_server.keys.records import GatewayKey
from llm_server.stores.dynamodb import DynamoDBTable, refused

RECORDS = {"S": "gkey"}
HASH_PREFIX = "gkeyhash#"
HASH_SK = {"S": "gkeyhash"}


def hash_key(secret_hash: str) -> dict[str, Any]:
    """The key of a secret's hash item."""
    return {"pk": {"S": HASH_PREFIX + secret_hash}, "sk": HASH_SK}


def key_of_hash_item(item: dict[str, Any] | None) -> GatewayKey | None:
    """The record a hash item holds (None: no item)."""
    return GatewayKey.from_json(item["record"]["S"]) if item else None


class DynamoDBKeyStore(DynamoDBTable):
    """Keys as items of the one table."""

    def create(self, key: GatewayKey) -> bool:
        """The record and its hash items, each only if absent, in one transaction."""
        items = [self._put_record(key, "attribute_not_exists(pk)")]
        items += [self._put_hash(key, h, new=True) for h in key.hashes]
        return self._transact(items)

    def get(self, key_id: str) -> GatewayKey | None:
        """One consistent GetItem."""
        item = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": RECORDS, "sk": {"S": key_id}},
            ConsistentRead=True,
        ).get("Item")
        return _record(item) if item else None

    def page(self, after: str, limit: int) -> tuple[list[GatewayKey], str]:
        """One Query of the records' partition, from after `after`."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": RECORDS},
            "Limit": limit,
            "ConsistentRead": True,
        }
        if after:
            query["ExclusiveStartKey"] = {"pk": RECORDS, "sk": {"S": after}}
        answer = self.client.query(**query)
        keys = [_record(item) for item in answer["Items"]]
        more = answer.get("LastEvaluatedKey")
        return keys, more["sk"]["S"] if more and keys else ""

    def find(self, secret_hash: str) -> GatewayKey | None:
        """One GetItem of the hash's item (what the authorizer does too)."""
        item = self.client.get_item(
            TableName=self.table_name, Key=hash_key(secret_hash), ConsistentRead=True
        ).get("Item")
        return key_of_hash_item(item)

    def replace(self, previous: GatewayKey, key: GatewayKey) -> bool:
        """The record if its version is unchanged, its live hash items, the dropped ones gone."""
        record = self._put_record(replace(key, version=previous.version + 1), "version = :v")
        record["Put"]["ExpressionAttributeValues"] = {":v": {"N": str(previous.version)}}
        items = [record]
        items += [self._put_hash(key, h) for h in key.hashes]
        items += [
            {"Delete": {"TableName": self.table_name, "Key": hash_key(h)}}
            for h in previous.hashes
            if h not in key.hashes
        ]
        return self._transact(items)

    def _put_record(self, key: GatewayKey, condition: str) -> dict[str, Any]:
        item = {
            "pk": RECORDS,
            "sk": {"S": key.id},
            "record": {"S": key.to_json()},
            "version": {"N": str(key.version)},
        }
        put = {"TableName": self.table_name, "Item": item, "ConditionExpression": condition}
        return {"Put": put}

    def _put_hash(self, key: GatewayKey, secret_hash: str, new: bool = False) -> dict[str, Any]:
        """A hash item with its key's record as it is now (its own hash only)."""
        until = key.hashes[secret_hash]
        copy = replace(key, hashes={secret_hash: until})
        item: dict[str, Any] = {**hash_key(secret_hash), "record": {"S": copy.to_json()}}
        if until is not None:  # a rotated secret's grace period: gone by TTL after it
            item["expiration"] = {"N": str(math.ceil(until))}
        put: dict[str, Any] = {"TableName": self.table_name, "Item": item}
        if new:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": put}

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """Write `items` at once; False if a condition refused them (a race, or a duplicate)."""
        from botocore.exceptions import ClientError

        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if refused(exc, "TransactionCanceledException"):
                return False
            raise
        return True


def _record(item: dict[str, Any]) -> GatewayKey:
    return replace(GatewayKey.from_json(item["record"]["S"]), version=int(item["version"]["N"]))
