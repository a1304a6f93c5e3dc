"""Conversation sessions: append-only turns, read back newest-last, erased on request.

Two stores behind one interface: SQLite (the embedded default, one local file that survives
restarts) and DynamoDB (one item per turn, partition `session#<id>`). Turns are only ever added,
never rewritten, so two requests racing on one session both keep their turn. Items carry an
`expiration` (epoch seconds) after which they are no longer read, whether or not the store has
deleted them yet (DynamoDB's TTL deletes lazily).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from llm_server.stores.dynamodb import DynamoDBTable
from llm_server.stores.expiry import expires_at, is_expired
from llm_server.stores.sqlite import SQLiteFile


@dataclass(frozen=True)
class StoredTurn:
    """One exchange of a session."""

    user: str
    assistant: str
    model: str
    input_tokens: int
    output_tokens: int
    created_at: str


class SessionStore(Protocol):
    """Where session turns live."""

    def append(self, session_id: str, turn: StoredTurn) -> None:
        """Add a turn (never overwrites one)."""
        ...

    def recent(self, session_id: str, limit: int) -> list[StoredTurn]:
        """The newest `limit` unexpired turns, oldest first."""
        ...

    def delete(self, session_id: str) -> int:
        """Erase a session; return how many turns were removed."""
        ...


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS session_turns (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "session_id TEXT NOT NULL, expiration INTEGER NOT NULL, user TEXT, assistant TEXT, "
    "model TEXT, input_tokens INTEGER, output_tokens INTEGER, created_at TEXT)",
    "CREATE INDEX IF NOT EXISTS session_turns_by_session ON session_turns (session_id, id)",
)


class SQLiteSessionStore:
    """Sessions in a local SQLite file; safe across threads and processes."""

    def __init__(self, path: str, ttl_seconds: int) -> None:
        self._file = SQLiteFile(path, SCHEMA)
        self._connect = self._file.connect
        self._ttl = ttl_seconds

    def append(self, session_id: str, turn: StoredTurn) -> None:
        """Insert the turn as a new row."""
        row = {"session_id": session_id, "expiration": expires_at(self._ttl), **asdict(turn)}
        with self._connect() as connection:
            connection.execute(
                f"INSERT INTO session_turns ({', '.join(row)}) "
                f"VALUES ({', '.join('?' for _ in row)})",
                tuple(row.values()),
            )

    def recent(self, session_id: str, limit: int) -> list[StoredTurn]:
        """The newest unexpired rows, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT user, assistant, model, input_tokens, output_tokens, created_at "
                "FROM session_turns WHERE session_id = ? AND expiration > ? "
                "ORDER BY id DESC LIMIT ?",
                (session_id, time.time(), limit),
            ).fetchall()
        return [StoredTurn(*row) for row in reversed(rows)]

    def delete(self, session_id: str) -> int:
        """Delete every row of the session."""
        with self._connect() as connection:
            cursor = connection.execute(
                "DELETE FROM session_turns WHERE session_id = ?", (session_id,)
            )
        return cursor.rowcount


class DynamoDBSessionStore(DynamoDBTable):
    """Sessions in the DynamoDB table (`pk`, `sk`, TTL attribute `expiration`)."""

    def __init__(self, table_name: str, ttl_seconds: int, client: Any = None) -> None:
        super().__init__(table_name, client)
        self._ttl = ttl_seconds

    def append(self, session_id: str, turn: StoredTurn) -> None:
        """Put the turn as its own item; the sort key is unique, so nothing is overwritten."""
        sort_key = f"turn#{time.time_ns():020d}#{uuid.uuid4().hex[:8]}"
        item = {
            "pk": {"S": _pk(session_id)},
            "sk": {"S": sort_key},
            "expiration": {"N": str(expires_at(self._ttl))},
            "user": {"S": turn.user},
            "assistant": {"S": turn.assistant},
            "model": {"S": turn.model},
            "input_tokens": {"N": str(turn.input_tokens)},
            "output_tokens": {"N": str(turn.output_tokens)},
            "created_at": {"S": turn.created_at},
        }
        self.client.put_item(
            TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)"
        )

    def recent(self, session_id: str, limit: int) -> list[StoredTurn]:
        """Query newest first, skip expired items (TTL deletion lags), return oldest first."""
        turns: list[StoredTurn] = []
        for item in self._items(session_id, newest_first=True):
            if is_expired(item["expiration"]["N"]):
                continue
            turns.append(
                StoredTurn(
                    user=item["user"]["S"],
                    assistant=item["assistant"]["S"],
                    model=item["model"]["S"],
                    input_tokens=int(item["input_tokens"]["N"]),
                    output_tokens=int(item["output_tokens"]["N"]),
                    created_at=item["created_at"]["S"],
                )
            )
            if len(turns) >= limit:
                break
        return list(reversed(turns))

    def delete(self, session_id: str) -> int:
        """Delete every item of the session, 25 per batch."""
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._items(session_id, keys_only=True)]
        for start in range(0, len(keys), 25):
            batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            self.client.batch_write_item(RequestItems={self._table: batch})
        return len(keys)

    def _items(self, session_id: str, newest_first: bool = False, keys_only: bool = False):
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :turn)",
            "ExpressionAttributeValues": {":pk": {"S": _pk(session_id)}, ":turn": {"S": "turn#"}},
            "ScanIndexForward": not newest_first,
        }
        if keys_only:
            query["ProjectionExpression"] = "pk, sk"
        while True:
            page = self.client.query(**query)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _pk(session_id: str) -> str:
    return f"session#{session_id}"
