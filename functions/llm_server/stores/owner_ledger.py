"""What one owner holds of one kind (sessions, stored responses), so it can be bounded.

A store records each new thing (a session's first turn, a stored response) with its size; the
ledger answers which of the owner's oldest things must go so that at most `max_count` of them
and `max_bytes` in all remain (the newest always stays). The store then erases those. SQLite
can count with a query; DynamoDB cannot count a partition-less set cheaply, so there the ledger
is one item per owner and kind, `pk = owner#<owner>`, `sk = <kind>`, holding every entry, and
updated under a version check (a racing writer retries).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from llm_server.exceptions import StoreUnavailableException
from llm_server.stores.dynamodb import CAS_ATTEMPTS, DynamoDBTable, lost_race, refused
from llm_server.stores.expiry import expires_at

Change = Callable[[dict[str, list[float]]], list[str]]  # edits the entries, returns the evicted


@dataclass(frozen=True)
class OwnerLimits:
    """At most `max_count` things and `max_bytes` of them per owner (0: unbounded)."""

    max_count: int
    max_bytes: int = 0


def evicted(entries: dict[str, list[float]], keep: str, limits: OwnerLimits) -> list[str]:
    """The oldest keys of `entries` (key: [bytes, written at]) to drop, never `keep`."""
    total = sum(size for size, _ in entries.values())
    count = len(entries)
    gone: list[str] = []
    for key in sorted(entries, key=lambda k: entries[k][1]):
        over_count = limits.max_count and count > limits.max_count
        over_bytes = limits.max_bytes and total > limits.max_bytes
        if not (over_count or over_bytes):
            break
        if key == keep:
            continue
        gone.append(key)
        count -= 1
        total -= entries[key][0]
    return gone


class DynamoDBOwnerLedger:
    """The ledger item of each owner for one `kind`, in the table of `store` (and its client)."""

    def __init__(
        self, store: DynamoDBTable, kind: str, limits: OwnerLimits, ttl_seconds: int
    ) -> None:
        self._store = store
        self._kind = kind
        self._limits = limits
        self._ttl = ttl_seconds

    def record(self, owner: str, key: str, size: int, now: float) -> list[str]:
        """Add `key`; return the owner's keys that must now be erased (already forgotten here)."""

        def change(entries: dict[str, list[float]]) -> list[str]:
            entries[key] = [size, now]
            gone = evicted(entries, key, self._limits)
            for old in gone:
                del entries[old]
            return gone

        return self._update(owner, now, change)

    def forget(self, owner: str, key: str, now: float) -> None:
        """Remove `key` (erased by its owner)."""

        def change(entries: dict[str, list[float]]) -> list[str]:
            entries.pop(key, None)
            return []

        self._update(owner, now, change)

    def _update(self, owner: str, now: float, change: Change) -> list[str]:
        from botocore.exceptions import ClientError

        pk = {"pk": {"S": f"owner#{owner}"}, "sk": {"S": self._kind}}
        client, table = self._store.client, self._store.table_name
        for attempt in range(CAS_ATTEMPTS):
            item = client.get_item(TableName=table, Key=pk, ConsistentRead=True)
            item = item.get("Item")
            version = int(item["version"]["N"]) if item else 0
            entries = json.loads(item["entries"]["S"]) if item else {}
            cutoff = now - self._ttl  # entries older than the TTL have expired with their things
            entries = {k: v for k, v in entries.items() if v[1] > cutoff}
            gone = change(entries)
            written = {
                **pk,
                "entries": {"S": json.dumps(entries, separators=(",", ":"))},
                "version": {"N": str(version + 1)},
                "expiration": {"N": str(expires_at(self._ttl, now))},
            }
            try:
                client.put_item(
                    TableName=table,
                    Item=written,
                    ConditionExpression="attribute_not_exists(pk) OR version = :v",
                    ExpressionAttributeValues={":v": {"N": str(version)}},
                )
            except ClientError as exc:
                if not refused(exc):
                    raise
                lost_race(attempt)  # another writer won: read again
                continue
            return list(gone)
        raise StoreUnavailableException(
            "Too many writes at once for this owner; retry shortly", retry_after=1
        )
