"""The gateway's keys: records by id, found by the hash of a secret.

SQLite here; DynamoDB in `keys_dynamodb.py`.

A record is written only over the version it was read at (`replace`), so two operators editing
one key at once cannot lose a change: the second tries again on what the first wrote. Secrets
are never stored: a record holds the hashes of the ones that still work.
"""

from __future__ import annotations

from typing import Protocol

from llm_server.keys.records import GatewayKey
from llm_server.stores.sqlite import SQLiteFile

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS gateway_keys (id TEXT PRIMARY KEY, record TEXT NOT NULL, "
    "version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gateway_key_hashes (hash TEXT PRIMARY KEY, id TEXT NOT NULL)",
)


class KeyStore(Protocol):
    """Where keys live."""

    def create(self, key: GatewayKey) -> bool:
        """Store a new key; False if one of its hashes is already a key's (an import again)."""
        ...

    def get(self, key_id: str) -> GatewayKey | None:
        """The key of `key_id`, revoked ones included."""
        ...

    def page(self, after: str, limit: int) -> tuple[list[GatewayKey], str]:
        """Up to `limit` keys after the id `after` ("": from the first), oldest first.

        And the cursor of the next page ("": none).
        """
        ...

    def find(self, secret_hash: str) -> GatewayKey | None:
        """The key one of whose secrets has this hash (its record may refuse it: `refusal`)."""
        ...

    def replace(self, previous: GatewayKey, key: GatewayKey) -> bool:
        """Write `key` over `previous` unless someone wrote it since; False then."""
        ...


class SQLiteKeyStore:
    """Keys in the local SQLite file."""

    def __init__(self, path: str) -> None:
        self._file = SQLiteFile(path, SCHEMA)
        self._connect = self._file.connect

    def create(self, key: GatewayKey) -> bool:
        """Insert the record and its hashes in one write transaction."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            marks = ", ".join("?" for _ in key.hashes)
            taken = connection.execute(
                f"SELECT 1 FROM gateway_key_hashes WHERE hash IN ({marks})", tuple(key.hashes)
            ).fetchone()
            if taken:
                connection.execute("ROLLBACK")
                return False
            connection.execute(
                "INSERT INTO gateway_keys VALUES (?, ?, ?)", (key.id, key.to_json(), key.version)
            )
            connection.executemany(
                "INSERT INTO gateway_key_hashes VALUES (?, ?)", [(h, key.id) for h in key.hashes]
            )
            connection.execute("COMMIT")
        return True

    def get(self, key_id: str) -> GatewayKey | None:
        """One row by id."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT record, version FROM gateway_keys WHERE id = ?", (key_id,)
            ).fetchone()
        return _key(*row) if row else None

    def page(self, after: str, limit: int) -> tuple[list[GatewayKey], str]:
        """Rows by id (ids sort by creation time), one more than asked to know if there is more."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT record, version FROM gateway_keys WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit + 1),
            ).fetchall()
        keys = [_key(record, version) for record, version in rows[:limit]]
        return keys, keys[-1].id if len(rows) > limit else ""

    def find(self, secret_hash: str) -> GatewayKey | None:
        """One join from the hash to its key, on the connection kept open.

        Every keyed request asks: opening a connection each time cost ~220 µs, the query ~20.
        Each read sees every commit made before it, by any process (WAL, autocommit).
        """
        with self._file.writer() as connection:
            row = connection.execute(
                "SELECT k.record, k.version FROM gateway_key_hashes h JOIN gateway_keys k "
                "ON k.id = h.id WHERE h.hash = ?",
                (secret_hash,),
            ).fetchone()
        return _key(*row) if row else None

    def replace(self, previous: GatewayKey, key: GatewayKey) -> bool:
        """The record and its hashes in one write transaction, if the version is unchanged."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            written = connection.execute(
                "UPDATE gateway_keys SET record = ?, version = version + 1 "
                "WHERE id = ? AND version = ?",
                (key.to_json(), key.id, previous.version),
            ).rowcount
            if not written:
                connection.execute("ROLLBACK")
                return False
            connection.execute("DELETE FROM gateway_key_hashes WHERE id = ?", (key.id,))
            connection.executemany(
                "INSERT INTO gateway_key_hashes VALUES (?, ?)", [(h, key.id) for h in key.hashes]
            )
            connection.execute("COMMIT")
        return True


def _key(record: str, version: int) -> GatewayKey:
    """A record as stored, at the version its row says."""
    from dataclasses import replace

    return replace(GatewayKey.from_json(record), version=version)
