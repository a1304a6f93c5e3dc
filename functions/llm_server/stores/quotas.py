"""Counters for free-mode quotas, shared by every container: SQLite locally, DynamoDB on AWS.

A counter is (client, window), e.g. ("ab12...", "rpm#2026-11-25T12:01") for requests in one
minute, or ("ab12...", "tpd#2026-11-25") for tokens in one UTC day. `add` is atomic in both
stores, so concurrent requests in different containers cannot overshoot a request limit.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from llm_server.stores.dynamodb import DynamoDBTable
from llm_server.stores.expiry import expires_at, is_expired
from llm_server.stores.sqlite import SQLiteFile

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS quota_counters (client TEXT NOT NULL, window TEXT NOT NULL, "
    "used INTEGER NOT NULL, expiration INTEGER NOT NULL, PRIMARY KEY (client, window))",
)


class QuotaStore(Protocol):
    """Atomic counters with an expiry."""

    def add(self, client: str, window: str, amount: int, limit: int | None, ttl: int) -> bool:
        """Add `amount` unless that would pass `limit` (None: always add); True if added."""
        ...

    def used(self, client: str, window: str) -> int:
        """The counter's value (0 if absent or expired)."""
        ...


class SQLiteQuotaStore:
    """Quota counters in the local SQLite file."""

    def __init__(self, path: str) -> None:
        self._connect = SQLiteFile(path, SCHEMA).connect

    def add(self, client: str, window: str, amount: int, limit: int | None, ttl: int) -> bool:
        """Add within one write transaction."""
        now = time.time()
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(
                "SELECT used FROM quota_counters WHERE client = ? AND window = ? "
                "AND expiration > ?",
                (client, window, now),
            ).fetchone()
            used = row[0] if row else 0
            if limit is not None and used + amount > limit:
                connection.execute("ROLLBACK")
                return False
            connection.execute(
                "INSERT OR REPLACE INTO quota_counters VALUES (?, ?, ?, ?)",
                (client, window, used + amount, expires_at(ttl)),
            )
            connection.execute("COMMIT")
        return True

    def used(self, client: str, window: str) -> int:
        """Read the counter."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT used FROM quota_counters WHERE client = ? AND window = ? "
                "AND expiration > ?",
                (client, window, time.time()),
            ).fetchone()
        return row[0] if row else 0


class DynamoDBQuotaStore(DynamoDBTable):
    """Quota counters as items `pk = quota#<client>`, `sk = <window>` of the shared table."""

    def add(self, client: str, window: str, amount: int, limit: int | None, ttl: int) -> bool:
        """One conditional `UpdateItem ADD`: atomic across containers."""
        from botocore.exceptions import ClientError

        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": f"quota#{client}"}, "sk": {"S": window}},
            "UpdateExpression": "ADD used :amount SET expiration = if_not_exists(expiration, :exp)",
            "ExpressionAttributeValues": {
                ":amount": {"N": str(amount)},
                ":exp": {"N": str(expires_at(ttl))},
            },
        }
        if limit is not None:
            update["ConditionExpression"] = "attribute_not_exists(used) OR used <= :room"
            update["ExpressionAttributeValues"][":room"] = {"N": str(limit - amount)}
        try:
            self.client.update_item(**update)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def used(self, client: str, window: str) -> int:
        """Read the counter; an expired item (TTL deletes lazily) counts as 0."""
        item = self.client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"quota#{client}"}, "sk": {"S": window}},
            ConsistentRead=True,
        ).get("Item")
        if not item or is_expired(item["expiration"]["N"]):
            return 0
        return int(item["used"]["N"])
