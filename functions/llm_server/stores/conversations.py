"""Conversations (the Responses API's `/v1/conversations`): an owner's ordered, bounded items.

A conversation belongs to its owner: every read and write is keyed by owner and id, so another
caller's id is unknown. It holds its metadata and items in order (each an opaque JSON record
with an id, the meaning `openai_api/conversations.py`'s); it keeps at most `max_items` items and
`max_bytes` of them, the oldest leaving first as a session's turns do (the newest always stays);
an owner keeps at most `max_conversations`, creating one more erases the owner's oldest.
Everything expires `ttl_seconds` after the conversation's last write. SQLite here (one
transaction a write), DynamoDB in `conversations_dynamodb.py` (a head item guarded by a version).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from llm_server.stores.expiry import Clock, expires_at
from llm_server.stores.sqlite import SQLiteFile

if TYPE_CHECKING:
    import sqlite3


@dataclass(frozen=True)
class ConversationLimits:
    """How long a conversation lives and how much one may hold; how many an owner may keep."""

    ttl_seconds: int
    max_items: int
    max_bytes: int
    max_conversations: int


@dataclass(frozen=True)
class Conversation:
    """A conversation's id, when it was made (epoch seconds) and its metadata."""

    id: str
    created_at: int
    metadata: dict[str, str]


@dataclass(frozen=True)
class Item:
    """One item of a conversation: its id and its JSON."""

    id: str
    data: bytes

    @property
    def size(self) -> int:
        """The bytes it stores (what `max_bytes` bounds)."""
        return len(self.data)


@dataclass(frozen=True)
class ItemPage:
    """Items in the order asked, and whether more follow."""

    items: list[Item]
    has_more: bool


class ConversationStore(Protocol):
    """Where conversations live."""

    def create(self, owner: str, conversation: Conversation, items: list[Item]) -> None:
        """Keep a new conversation with its first items, erasing the owner's oldest past the cap."""
        ...

    def get(self, owner: str, conversation_id: str) -> Conversation | None:
        """The owner's live conversation, or None."""
        ...

    def set_metadata(
        self, owner: str, conversation_id: str, metadata: dict[str, str]
    ) -> Conversation | None:
        """Replace its metadata; the conversation, or None if there is none."""
        ...

    def delete(self, owner: str, conversation_id: str) -> bool:
        """Erase it and its items; whether there was one."""
        ...

    def append(self, owner: str, conversation_id: str, items: list[Item]) -> bool:
        """Add items at the end, pruning the oldest past the bounds; False if there is none."""
        ...

    def page(
        self, owner: str, conversation_id: str, limit: int, after: str | None, newest_first: bool
    ) -> ItemPage | None:
        """At most `limit` items after the item `after`, in the order asked; None if none."""
        ...

    def item(self, owner: str, conversation_id: str, item_id: str) -> Item | None:
        """One item by its id, or None."""
        ...

    def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool:
        """Erase one item; whether there was one."""
        ...


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS conversations (owner TEXT NOT NULL, id TEXT NOT NULL, "
    "created_at INTEGER NOT NULL, metadata TEXT NOT NULL, expiration INTEGER NOT NULL, "
    "PRIMARY KEY (owner, id))",
    "CREATE TABLE IF NOT EXISTS conversation_items (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "owner TEXT NOT NULL, conversation TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS conversation_items_in_order "
    "ON conversation_items (owner, conversation, seq)",
)
_LIVE = "owner = ? AND id = ? AND expiration > ?"
_ITEMS = "owner = ? AND conversation = ?"
# The conversation's items past either bound, counted newest first; the newest always stays.
_PRUNE = (
    "DELETE FROM conversation_items WHERE seq IN (SELECT seq FROM (SELECT seq, "
    "ROW_NUMBER() OVER newest AS n, SUM(length(data)) OVER newest AS total "
    f"FROM conversation_items WHERE {_ITEMS} WINDOW newest AS (ORDER BY seq DESC)) "
    "WHERE n > ? OR (n > 1 AND total > ?))"
)


class SQLiteConversationStore:
    """Conversations in the local SQLite file; one transaction a write."""

    def __init__(self, path: str, limits: ConversationLimits, clock: Clock = time.time) -> None:
        self._connect = SQLiteFile(path, SCHEMA).connect
        self._limits = limits
        self._clock = clock

    def create(self, owner: str, conversation: Conversation, items: list[Item]) -> None:
        """Insert it and its items; the owner's oldest past the bound (and expired ones) leave."""
        now = self._clock()
        metadata = json.dumps(conversation.metadata)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            expired = db.execute(
                "SELECT owner, id FROM conversations WHERE expiration <= ? LIMIT 100", (now,)
            ).fetchall()
            oldest = db.execute(
                "SELECT owner, id FROM conversations WHERE owner = ? AND expiration > ? "
                "ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?",
                (owner, now, self._limits.max_conversations - 1),
            ).fetchall()
            for gone_owner, gone in [*expired, *oldest]:
                _erase(db, gone_owner, gone)
            db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                (owner, conversation.id, conversation.created_at, metadata, self._expiry(now)),
            )
            self._insert(db, owner, conversation.id, items)
            db.execute("COMMIT")

    def get(self, owner: str, conversation_id: str) -> Conversation | None:
        """The live conversation."""
        with self._connect() as db:
            return _read(db, owner, conversation_id, self._clock())

    def set_metadata(
        self, owner: str, conversation_id: str, metadata: dict[str, str]
    ) -> Conversation | None:
        """Replace the metadata, and keep the conversation for another TTL."""
        now = self._clock()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                f"UPDATE conversations SET metadata = ?, expiration = ? WHERE {_LIVE}",
                (json.dumps(metadata), self._expiry(now), owner, conversation_id, now),
            )
            found = _read(db, owner, conversation_id, now)
            db.execute("COMMIT")
        return found

    def delete(self, owner: str, conversation_id: str) -> bool:
        """Erase it and its items."""
        now = self._clock()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            found = _read(db, owner, conversation_id, now) is not None
            _erase(db, owner, conversation_id)
            db.execute("COMMIT")
        return found

    def append(self, owner: str, conversation_id: str, items: list[Item]) -> bool:
        """Insert the items and prune, in one transaction; keep it for another TTL."""
        now = self._clock()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            touched = db.execute(
                f"UPDATE conversations SET expiration = ? WHERE {_LIVE}",
                (self._expiry(now), owner, conversation_id, now),
            ).rowcount
            if touched:
                self._insert(db, owner, conversation_id, items)
            db.execute("COMMIT")
        return bool(touched)

    def page(
        self, owner: str, conversation_id: str, limit: int, after: str | None, newest_first: bool
    ) -> ItemPage | None:
        """One more row than asked is read, to know whether more follow."""
        order, compare = ("DESC", "<") if newest_first else ("ASC", ">")
        with self._connect() as db:
            if _read(db, owner, conversation_id, self._clock()) is None:
                return None
            start = _seq(db, owner, conversation_id, after) if after else None
            if after and start is None:
                return ItemPage([], False)
            rows = db.execute(
                f"SELECT id, data FROM conversation_items WHERE {_ITEMS} "
                f"AND (? IS NULL OR seq {compare} ?) ORDER BY seq {order} LIMIT ?",
                (owner, conversation_id, start, start, limit + 1),
            ).fetchall()
        items = [Item(row[0], bytes(row[1])) for row in rows]
        return ItemPage(items[:limit], len(items) > limit)

    def item(self, owner: str, conversation_id: str, item_id: str) -> Item | None:
        """The item, if its conversation is live."""
        with self._connect() as db:
            if _read(db, owner, conversation_id, self._clock()) is None:
                return None
            row = db.execute(
                f"SELECT id, data FROM conversation_items WHERE {_ITEMS} AND id = ?",
                (owner, conversation_id, item_id),
            ).fetchone()
        return Item(row[0], bytes(row[1])) if row else None

    def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool:
        """Delete the item, if its conversation is live."""
        with self._connect() as db:
            if _read(db, owner, conversation_id, self._clock()) is None:
                return False
            deleted = db.execute(
                f"DELETE FROM conversation_items WHERE {_ITEMS} AND id = ?",
                (owner, conversation_id, item_id),
            ).rowcount
        return bool(deleted)

    def _expiry(self, now: float) -> int:
        return expires_at(self._limits.ttl_seconds, now)

    def _insert(
        self, db: sqlite3.Connection, owner: str, conversation_id: str, items: list[Item]
    ) -> None:
        db.executemany(
            "INSERT INTO conversation_items (owner, conversation, id, data) VALUES (?, ?, ?, ?)",
            [(owner, conversation_id, item.id, item.data) for item in items],
        )
        limits = self._limits
        db.execute(_PRUNE, (owner, conversation_id, limits.max_items, limits.max_bytes))


def _read(
    db: sqlite3.Connection, owner: str, conversation_id: str, now: float
) -> Conversation | None:
    row = db.execute(
        f"SELECT created_at, metadata FROM conversations WHERE {_LIVE}",
        (owner, conversation_id, now),
    ).fetchone()
    return Conversation(conversation_id, row[0], json.loads(row[1])) if row else None


def _seq(db: sqlite3.Connection, owner: str, conversation_id: str, item_id: str) -> int | None:
    row = db.execute(
        f"SELECT seq FROM conversation_items WHERE {_ITEMS} AND id = ?",
        (owner, conversation_id, item_id),
    ).fetchone()
    return int(row[0]) if row else None


def _erase(db: sqlite3.Connection, owner: str, conversation_id: str) -> None:
    db.execute("DELETE FROM conversations WHERE owner = ? AND id = ?", (owner, conversation_id))
    db.execute(f"DELETE FROM conversation_items WHERE {_ITEMS}", (owner, conversation_id))
