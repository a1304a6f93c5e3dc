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
import secrets
import threading
import time
from dataclasses import dataclass
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

    def __init__(self, table_name: str, client: Any = None) -> None:
        super().__init__(table_name, client)
        # The windows this store last wrote, by (client, name): its next write of one is tried
        # on that state without reading it first, and read only if someone else wrote since.
        self._written: dict[tuple[str, str], _Window] = {}
        self._kept_stamps = 0  # in `_written`: what bounds its memory
        self._remembering = threading.Lock()  # admissions run on worker threads

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
        """Write the window back only if nobody else wrote it since it was read (or written).

        In a warm container the same client's window is usually as this store last wrote it:
        the write is tried on that, one round trip instead of a read and a write. A refusal is
        only ever decided on what is stored.
        """
        key = {"pk": {"S": f"quota#{client}"}, "sk": {"S": name}}
        guess = self._recall((client, name))
        state = guess
        for attempt in range(CAS_ATTEMPTS):
            if state is None:
                state = self._read(key)
            stamps, wait = _slide(state.stamps, limit, window, now)
            if wait and state is guess:
                state = None  # what this store wrote last: the stored window decides a refusal
                continue
            if wait:
                return wait
            written = _Window(str(secrets.randbits(63)), stamps)
            stored = self._put_if_version(key, state, written, math.ceil(now + window) + 1)
            if stored is written:
                self._remember((client, name), written)
                return 0.0
            if state is guess:
                state = stored  # someone wrote since: try at once on what they wrote
            else:
                lost_race(attempt)  # another container won the race: read again after a pause
                state = None
        return 1.0  # contended beyond reason: ask the caller to come back in a second

    def _read(self, key: dict[str, Any]) -> _Window:
        item = self.client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return _Window.of(item.get("Item")) or _Window("0", [])

    def _recall(self, window_of: tuple[str, str]) -> _Window | None:
        """The window as this store last wrote it, taken out (one request writes on it)."""
        with self._remembering:
            last = self._written.pop(window_of, None)
            self._kept_stamps -= len(last.stamps) if last else 0
        return last

    def _remember(self, window_of: tuple[str, str], written: _Window) -> None:
        """Keep the last write; past `KEPT_STAMPS` stamps in all, the oldest are forgotten."""
        with self._remembering:
            previous = self._written.pop(window_of, None)  # a request of the same client's
            self._kept_stamps += len(written.stamps) - (len(previous.stamps) if previous else 0)
            self._written[window_of] = written
            while self._kept_stamps > KEPT_STAMPS and self._written:
                oldest = self._written.pop(next(iter(self._written)))
                self._kept_stamps -= len(oldest.stamps)

    def _put_if_version(
        self, key: dict[str, Any], expected: _Window, window: _Window, expiration: int
    ) -> _Window | None:
        """`window` if it was written over `expected`, else the window stored instead.

        DynamoDB returns that with its refusal; None from a stand-in that does not: read it.
        """
        from botocore.exceptions import ClientError

        item = {
            **key,
            "stamps": {"S": json.dumps(window.stamps)},
            "version": {"N": window.version},
            "expiration": {"N": str(expiration)},
        }
        try:
            self.client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR version = :version",
                ExpressionAttributeValues={":version": {"N": expected.version}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if refused(exc):
                return _Window.of(exc.response.get("Item"))
            raise
        return window


# Stamps a store remembers in all (~3 MiB): thousands of clients' windows at a few requests a
# minute each, or fewer at a high FREE_MODE_REQUESTS_PER_MINUTE.
KEPT_STAMPS = 100_000


@dataclass(frozen=True, eq=False)
class _Window:
    """A stored sliding window: its version and its stamps.

    Versions are random, not counted up: an item deleted by its TTL and made again by another
    container cannot then look unchanged to a store that remembers the old one.
    """

    version: str
    stamps: list[float]

    @classmethod
    def of(cls, item: dict[str, Any] | None) -> _Window | None:
        """The window an item holds (None: no item)."""
        if not item:
            return None
        return cls(item["version"]["N"], json.loads(item["stamps"]["S"]))
