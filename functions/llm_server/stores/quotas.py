"""Free-mode quota state, shared by every container: SQLite locally, DynamoDB on AWS.

Two kinds, both changed atomically in both stores, so requests racing in different containers
cannot overshoot a limit:
- counters (client, window), e.g. ("key:ab12...", "tpd#2026-11-25") for tokens in one UTC day,
  moved by `add`;
- sliding windows (client, name): the times of the requests admitted in the last `window`
  seconds, checked and extended by `hit` (compare-and-set on a version in DynamoDB, one write
  transaction in SQLite).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Protocol

from llm_server.stores.dynamodb import CAS_ATTEMPTS, DynamoDBTable, lost_race, refused
from llm_server.stores.expiry import expires_at, is_expired
from llm_server.stores.sqlite import SQLiteFile

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS quota_counters (client TEXT NOT NULL, window TEXT NOT NULL, "
    "used INTEGER NOT NULL, expiration INTEGER NOT NULL, PRIMARY KEY (client, window))",
    "CREATE TABLE IF NOT EXISTS rate_windows (client TEXT NOT NULL, name TEXT NOT NULL, "
    "stamps TEXT NOT NULL, PRIMARY KEY (client, name))",
)


class QuotaStore(Protocol):
    """Atomic counters with an expiry."""

    def add(self, client: str, window: str, amount: int, limit: int | None, ttl: int) -> bool:
        """Add `amount` unless that would pass `limit` (None: always add); True if added."""
        ...

    def used(self, client: str, window: str) -> int:
        """The counter's value (0 if absent or expired)."""
        ...

    def hit(self, client: str, name: str, limit: int, window: float, now: float) -> float:
        """Admit one event at `now` unless `limit` were admitted in the last `window` seconds.

        Returns 0 when admitted, else the seconds until the oldest of them leaves the window.
        """
        ...


def _slide(stamps: list[float], limit: int, window: float, now: float) -> tuple[list[float], float]:
    """The window's stamps with `now` added and 0, or unchanged with the seconds to wait."""
    live = sorted(stamp for stamp in stamps if stamp > now - window)
    if len(live) >= limit:
        return live, max(0.001, live[-limit] + window - now)
    return [*live, now], 0.0


class SQLiteQuotaStore:
    """Quota counters in the local SQLite file."""

    def __init__(self, path: str) -> None:
        self._connect = SQLiteFile(path, SCHEMA).connect

    def add(self, client: str, window: str, amount: int, limit: int | None, ttl: int) -> bool:
        """Add within one write transaction."""
        if limit is not None and amount > limit:
            return False
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
                (client, window, used + amount, expires_at(ttl, now)),
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

    def hit(self, client: str, name: str, limit: int, window: float, now: float) -> float:
        """Check and extend the window within one write transaction."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(
                "SELECT stamps FROM rate_windows WHERE client = ? AND name = ?", (client, name)
            ).fetchone()
            stamps, wait = _slide(json.loads(row[0]) if row else [], limit, window, now)
            if not wait:
                connection.execute(
                    "INSERT OR REPLACE INTO rate_windows VALUES (?, ?, ?)",
                    (client, name, json.dumps(stamps)),
                )
            connection.execute("COMMIT")
        return wait


class DynamoDBQuotaStore(DynamoDBTable):
    """Quota counters as items `pk = quota#<client>`, `sk = <window>` of the shared table."""

    def add(self, client: str, window: str, amount: int, limit: int | None, ttl: int) -> bool:
        """One conditional `UpdateItem ADD`: atomic across containers."""
        from botocore.exceptions import ClientError

        if limit is not None and amount > limit:
            return False
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": f"quota#{client}"}, "sk": {"S": window}},
            "UpdateExpression": "ADD used :amount SET expiration = if_not_exists(expiration, :exp)",
            "ExpressionAttributeValues": {
                ":amount": {"N": str(amount)},
                ":exp": {"N": str(expires_at(ttl, time.time()))},
            },
        }
        if limit is not None:
            update["ConditionExpression"] = "attribute_not_exists(used) OR used <= :room"
            update["ExpressionAttributeValues"][":room"] = {"N": str(limit - amount)}
        try:
            self.client.update_item(**update)
        except ClientError as exc:
            if refused(exc):
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
        if not item or is_expired(item["expiration"]["N"], time.time()):
            return 0
        return int(item["used"]["N"])

    def hit(self, client: str, name: str, limit: int, window: float, now: float) -> float:
        """Read the window, then write it back only if nobody else wrote it in between."""
        key = {"pk": {"S": f"quota#{client}"}, "sk": {"S": name}}
        for attempt in range(CAS_ATTEMPTS):
            item = self.client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
                "Item"
            )
            version = int(item["version"]["N"]) if item else 0
            stamps, wait = _slide(
                json.loads(item["stamps"]["S"]) if item else [], limit, window, now
            )
            if wait:
                return wait
            if self._put_if_version(key, version, stamps, math.ceil(now + window) + 1):
                return 0.0
            lost_race(attempt)  # another container won the race: read again
        return 1.0  # contended beyond reason: ask the caller to come back in a second

    def _put_if_version(
        self, key: dict[str, Any], version: int, stamps: list[float], expiration: int
    ) -> bool:
        from botocore.exceptions import ClientError

        item = {
            **key,
            "stamps": {"S": json.dumps(stamps)},
            "version": {"N": str(version + 1)},
            "expiration": {"N": str(expiration)},
        }
        try:
            self.client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR version = :version",
                ExpressionAttributeValues={":version": {"N": str(version)}},
            )
        except ClientError as exc:
            if refused(exc):
                return False
            raise
        return True
