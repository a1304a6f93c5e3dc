"""Stored responses (the Responses API's `store`): one opaque record per response, per owner.

The record's meaning is `openai_api/stored.py`'s; a store keeps bytes under (owner, response
id) until they expire, so one caller's ids never reach another's records. An owner keeps at most
`OwnerLimits` of them (count and bytes): storing one more erases the owner's oldest. SQLite here
(the embedded default), DynamoDB in `responses_dynamodb.py`.
"""

from __future__ import annotations

import time
from typing import Protocol

from llm_server.stores.expiry import expires_at
from llm_server.stores.owner_ledger import OwnerLimits
from llm_server.stores.sqlite import SQLiteFile

DEFAULT_LIMITS = OwnerLimits(1000, 100 * 1024 * 1024)


class ResponseStore(Protocol):
    """Where stored responses live."""

    def put(self, owner: str, response_id: str, record: bytes) -> None:
        """Keep a record for the store's TTL."""
        ...

    def get(self, owner: str, response_id: str) -> bytes | None:
        """The owner's unexpired record, or None."""
        ...

    def delete(self, owner: str, response_id: str) -> bool:
        """Erase the owner's record; whether there was one."""
        ...


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS stored_responses (owner TEXT NOT NULL, id TEXT NOT NULL, "
    "expiration INTEGER NOT NULL, record BLOB NOT NULL, PRIMARY KEY (owner, id))",
    # Each write deletes the expired rows: by this index, not by reading every record.
    "CREATE INDEX IF NOT EXISTS stored_responses_by_expiration ON stored_responses (expiration)",
)
# The owner's records past either bound, newest first; the newest always stays.
_EVICT = (
    "DELETE FROM stored_responses WHERE owner = ? AND id IN (SELECT id FROM (SELECT id, "
    "ROW_NUMBER() OVER newest AS n, SUM(length(record)) OVER newest AS total "
    "FROM stored_responses WHERE owner = ? AND expiration > ? "
    "WINDOW newest AS (ORDER BY expiration DESC, rowid DESC)) WHERE n > 1 AND (n > ? OR total > ?))"
)


class SQLiteResponseStore:
    """Stored responses in the local SQLite file; expired rows leave on each write."""

    def __init__(self, path: str, ttl_seconds: int, limits: OwnerLimits = DEFAULT_LIMITS) -> None:
        self._connect = SQLiteFile(path, SCHEMA).connect
        self._ttl = ttl_seconds
        self._limits = limits

    def put(self, owner: str, response_id: str, record: bytes) -> None:
        """Insert the record, drop expired ones and the owner's oldest past the bounds, at once."""
        now, limits = time.time(), self._limits
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT INTO stored_responses VALUES (?, ?, ?, ?)",
                (owner, response_id, expires_at(self._ttl, now), record),
            )
            connection.execute("DELETE FROM stored_responses WHERE expiration <= ?", (now,))
            bounds = (limits.max_count or 2**62, limits.max_bytes or 2**62)
            connection.execute(_EVICT, (owner, owner, now, *bounds))
            connection.execute("COMMIT")

    def get(self, owner: str, response_id: str) -> bytes | None:
        """The record, unless absent or expired."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT record FROM stored_responses WHERE owner = ? AND id = ? AND expiration > ?",
                (owner, response_id, time.time()),
            ).fetchone()
        return bytes(row[0]) if row else None

    def delete(self, owner: str, response_id: str) -> bool:
        """Delete the owner's record."""
        with self._connect() as connection:
            cursor = connection.execute(
                "DELETE FROM stored_responses WHERE owner = ? AND id = ? AND expiration > ?",
                (owner, response_id, time.time()),
            )
        return cursor.rowcount > 0
