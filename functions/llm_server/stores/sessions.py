"""Conversation sessions: turns appended, read back a page at a time, erased on request.

A session belongs to its owner (`Caller.owner`): every read and write is keyed by owner and id,
so another caller using the same id reaches a different, empty session. A session is bounded:
it keeps at most `max_turns` turns and `max_bytes` of text; appending a turn prunes the oldest
ones past either bound in the same atomic step (the newest turn is always kept). An owner keeps
at most `max_sessions` sessions: starting one more erases the owner's oldest-started one. Turns
expire `ttl` seconds after they were written, whether or not the store has deleted them yet.

Two stores behind one interface: SQLite here (the embedded default, one local file that
survives restarts) and DynamoDB in `sessions_dynamodb.py`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Protocol

from llm_server.stores.expiry import Clock, expires_at
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

    @property
    def size(self) -> int:
        """The bytes of text the turn stores (what SESSION_MAX_BYTES bounds)."""
        return len(self.user.encode()) + len(self.assistant.encode())


@dataclass(frozen=True)
class SessionLimits:
    """How long turns live and how much one session may hold."""

    ttl_seconds: int
    max_turns: int
    max_bytes: int
    max_sessions: int = 1000  # per owner: starting one more erases the owner's oldest-started


@dataclass(frozen=True)
class SessionPage:
    """Turns oldest first, and the cursor of the next page (None on the last one)."""

    turns: list[StoredTurn]
    next_cursor: int | None


class SessionStore(Protocol):
    """Where session turns live."""

    def append(self, owner: str, session_id: str, turn: StoredTurn) -> None:
        """Add a turn and prune the oldest past the bounds, in one atomic step."""
        ...

    def recent(self, owner: str, session_id: str, limit: int) -> list[StoredTurn]:
        """The newest `limit` unexpired turns, oldest first."""
        ...

    def page(self, owner: str, session_id: str, limit: int, after: int | None) -> SessionPage:
        """At most `limit` unexpired turns after cursor `after` (from the start if None)."""
        ...

    def delete(self, owner: str, session_id: str) -> int:
        """Erase a session; return how many turns were removed."""
        ...


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS conversation_turns (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "owner TEXT NOT NULL, session_id TEXT NOT NULL, expiration INTEGER NOT NULL, "
    "bytes INTEGER NOT NULL, user TEXT, assistant TEXT, model TEXT, input_tokens INTEGER, "
    "output_tokens INTEGER, created_at TEXT)",
    "CREATE INDEX IF NOT EXISTS conversation_turns_by_session "
    "ON conversation_turns (owner, session_id, id)",
)
_COLUMNS = "user, assistant, model, input_tokens, output_tokens, created_at"
_SESSION = "owner = ? AND session_id = ?"
# The session's live rows past either bound, counted newest first; the newest always stays.
_PRUNE = (
    "DELETE FROM conversation_turns WHERE id IN (SELECT id FROM (SELECT id, "
    "ROW_NUMBER() OVER newest AS n, SUM(bytes) OVER newest AS total FROM conversation_turns "
    f"WHERE {_SESSION} AND expiration > ? WINDOW newest AS (ORDER BY id DESC)) "
    "WHERE n > ? OR (n > 1 AND total > ?))"
)
# The owner's live sessions past the bound, oldest-started first (never the one just written).
_EVICT_SESSIONS = (
    "DELETE FROM conversation_turns WHERE owner = ? AND session_id IN (SELECT session_id FROM "
    "conversation_turns WHERE owner = ? AND expiration > ? AND session_id != ? "
    "GROUP BY session_id ORDER BY MIN(id) DESC LIMIT -1 OFFSET ?)"
)


class SQLiteSessionStore:
    """Sessions in a local SQLite file; safe across threads and processes."""

    def __init__(self, path: str, limits: SessionLimits, clock: Clock = time.time) -> None:
        self._connect = SQLiteFile(path, SCHEMA).connect
        self._limits = limits
        self._clock = clock

    def append(self, owner: str, session_id: str, turn: StoredTurn) -> None:
        """Insert the turn and prune the session in one write transaction."""
        limits, now = self._limits, self._clock()
        row = {
            "owner": owner,
            "session_id": session_id,
            "expiration": expires_at(limits.ttl_seconds, now),
        }
        row |= {"bytes": turn.size, **asdict(turn)}
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            new = not connection.execute(
                f"SELECT 1 FROM conversation_turns WHERE {_SESSION} AND expiration > ? LIMIT 1",
                (owner, session_id, now),
            ).fetchone()
            if new:  # one more session for this owner: the oldest past the bound leave
                others = limits.max_sessions - 1
                connection.execute(_EVICT_SESSIONS, (owner, owner, now, session_id, others))
            connection.execute(
                f"INSERT INTO conversation_turns ({', '.join(row)}) "
                f"VALUES ({', '.join('?' for _ in row)})",
                tuple(row.values()),
            )
            key = (owner, session_id)
            connection.execute(
                f"DELETE FROM conversation_turns WHERE {_SESSION} AND expiration <= ?", (*key, now)
            )
            connection.execute(_PRUNE, (*key, now, limits.max_turns, limits.max_bytes))
            connection.execute("COMMIT")

    def recent(self, owner: str, session_id: str, limit: int) -> list[StoredTurn]:
        """The newest unexpired rows, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM conversation_turns WHERE {_SESSION} AND expiration > ? "
                "ORDER BY id DESC LIMIT ?",
                (owner, session_id, self._clock(), limit),
            ).fetchall()
        return [StoredTurn(*row) for row in reversed(rows)]

    def page(self, owner: str, session_id: str, limit: int, after: int | None) -> SessionPage:
        """Rows after `after` in id order; one more is read only to know whether there is more."""
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT id, {_COLUMNS} FROM conversation_turns WHERE {_SESSION} "
                "AND expiration > ? AND id > ? ORDER BY id LIMIT ?",
                (owner, session_id, self._clock(), after or 0, limit + 1),
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return SessionPage([StoredTurn(*row[1:]) for row in rows], rows[-1][0] if more else None)

    def delete(self, owner: str, session_id: str) -> int:
        """Delete every row of the session."""
        with self._connect() as connection:
            cursor = connection.execute(
                f"DELETE FROM conversation_turns WHERE {_SESSION}", (owner, session_id)
            )
        return cursor.rowcount
