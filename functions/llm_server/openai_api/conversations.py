"""Conversations (`/v1/conversations`), as OpenAI defines them: a caller's items kept in order.

A conversation holds items (messages, function calls and their outputs, reasoning) and metadata;
`conversation` on a response reads its items as the turn's history and appends the turn's input
and output items when it ends. The store bounds each conversation and each owner
(`stores/conversations.py`); reading the history for a turn is bounded again as a stored chain
is (SESSION_MAX_STORED_TURNS messages, SESSION_MAX_BYTES), the newest kept.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from functools import partial
from typing import Any

from llm_server.exceptions import BadRequestException, NotFoundException
from llm_server.openai_api import items
from llm_server.openai_api.protocol import InputItem
from llm_server.stores.conversations import Conversation, ConversationStore, Item, ItemPage
from llm_server.stores.faults import retried
from llm_server.stores.sessions import SessionLimits
from llm_server.values import ChatMessage

MAX_NEW_ITEMS = 20  # OpenAI's bound on the items one request adds
MAX_METADATA = 16
PARAM = "conversation"


class ConversationArchive:
    """The owner's conversations (None store: they are off, as stored responses are)."""

    def __init__(self, store: ConversationStore | None, limits: SessionLimits) -> None:
        self._store = store
        self._limits = limits

    def require(self, param: str = PARAM) -> ConversationStore:
        """The store, or a 400 naming `param` when nothing is stored here."""
        if self._store is None:
            raise BadRequestException(
                "This server stores no conversations (SESSIONS_ENABLED=false)", param=param
            )
        return self._store

    async def create(
        self, owner: str, metadata: dict[str, str], added: list[InputItem]
    ) -> Conversation:
        """A new conversation with its first items."""
        store = self.require()
        conversation = Conversation(f"conv_{uuid.uuid4().hex}", int(time.time()), metadata)
        kept = _kept(added, "items")
        await asyncio.to_thread(store.create, owner, conversation, kept)
        return conversation

    async def get(
        self, owner: str, conversation_id: str, param: str = "conversation_id"
    ) -> Conversation:
        """The owner's conversation, or 404 naming `param`."""
        found = await asyncio.to_thread(self.require(param).get, owner, conversation_id)
        if found is None:
            raise _missing(conversation_id, param)
        return found

    async def update(
        self, owner: str, conversation_id: str, metadata: dict[str, str]
    ) -> Conversation:
        """Replace its metadata."""
        store = self.require()
        found = await asyncio.to_thread(store.set_metadata, owner, conversation_id, metadata)
        if found is None:
            raise _missing(conversation_id, "conversation_id")
        return found

    async def delete(self, owner: str, conversation_id: str) -> None:
        """Erase it, or 404."""
        if not await asyncio.to_thread(self.require().delete, owner, conversation_id):
            raise _missing(conversation_id, "conversation_id")

    async def add(
        self, owner: str, conversation_id: str, added: list[InputItem]
    ) -> list[dict[str, Any]]:
        """Append items a caller sends; the items as kept."""
        kept = _kept(added, "items")
        if not await asyncio.to_thread(self.require().append, owner, conversation_id, kept):
            raise _missing(conversation_id, "conversation_id")
        return [json.loads(item.data) for item in kept]

    async def page(
        self, owner: str, conversation_id: str, limit: int, after: str | None, newest_first: bool
    ) -> ItemPage:
        """A page of its items."""
        store = self.require()
        found = await asyncio.to_thread(
            store.page, owner, conversation_id, limit, after, newest_first
        )
        if found is None:
            raise _missing(conversation_id, "conversation_id")
        return found

    async def item(
        self, owner: str, conversation_id: str, item_id: str, deadline: float | None = None
    ) -> dict[str, Any] | None:
        """One item, or None (its conversation missing or without it)."""
        read = partial(self.require().item, owner, conversation_id, item_id)
        found = await asyncio.to_thread(retried, read, deadline)
        return None if found is None else dict(json.loads(found.data))

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> Conversation:
        """Erase one item; the conversation (a missing one is named as such, as on a read)."""
        store = self.require()
        if not await asyncio.to_thread(store.delete_item, owner, conversation_id, item_id):
            await self.get(owner, conversation_id)
            raise items.missing(item_id, "item_id")
        return await self.get(owner, conversation_id)

    async def history(
        self, owner: str, conversation_id: str, deadline: float | None = None
    ) -> tuple[ChatMessage, ...]:
        """Its items as the turn's earlier messages, the newest within the chain bounds."""
        from llm_server.openai_api.translate import split_messages

        store = self.require()
        read = partial(store.page, owner, conversation_id, self._limits.max_turns, None, True)
        page = await asyncio.to_thread(retried, read, deadline)
        if page is None:
            raise _missing(conversation_id, PARAM)
        kept: list[InputItem] = []
        size = 0
        for item in page.items:  # newest first, until the bytes run out
            size += item.size
            if kept and size > self._limits.max_bytes:
                break
            kept.append(items.as_input(json.loads(item.data)))
        if not kept:
            return ()
        return split_messages(list(reversed(kept)), PARAM)[1]

    async def remember(
        self,
        owner: str,
        conversation_id: str,
        stored: list[dict[str, Any]],
        deadline: float | None = None,
    ) -> None:
        """Append a finished turn's items (its input, its output) as they are kept."""
        kept = [Item(item["id"], json.dumps(item).encode()) for item in stored]
        append = partial(self.require().append, owner, conversation_id, kept)
        if not await asyncio.to_thread(retried, append, deadline):
            raise _missing(conversation_id, PARAM)


def _kept(added: list[InputItem], param: str) -> list[Item]:
    """Items a caller adds, as kept: each with an id, at most `MAX_NEW_ITEMS` of them."""
    if len(added) > MAX_NEW_ITEMS:
        raise BadRequestException(
            f"{param}: at most {MAX_NEW_ITEMS} items at once, not {len(added)}", param=param
        )
    kept = []
    for index, item in enumerate(added):
        if item.type == "item_reference":
            raise BadRequestException(
                f"{param}.{index}: send the item itself, not a reference", param=f"{param}.{index}"
            )
        stored = items.stored_form(item, item.id or items.new_item_id(item.type))
        kept.append(Item(stored["id"], json.dumps(stored).encode()))
    return kept


def check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """At most 16 pairs, keys of 64 characters and values of 512 (OpenAI's bounds)."""
    metadata = metadata or {}
    if len(metadata) > MAX_METADATA:
        raise BadRequestException(
            f"metadata: at most {MAX_METADATA} pairs, not {len(metadata)}", param="metadata"
        )
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            raise BadRequestException(
                "metadata: keys of at most 64 characters, values of at most 512",
                param="metadata",
            )
    return dict(metadata)


def conversation_object(conversation: Conversation) -> dict[str, Any]:
    """The `conversation` object."""
    return {
        "id": conversation.id,
        "object": "conversation",
        "created_at": conversation.created_at,
        "metadata": conversation.metadata,
    }


def item_list(found: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """A list of items, as OpenAI pages them."""
    return {
        "object": "list",
        "data": found,
        "first_id": found[0]["id"] if found else None,
        "last_id": found[-1]["id"] if found else None,
        "has_more": has_more,
    }


def _missing(conversation_id: str, param: str) -> NotFoundException:
    return NotFoundException(
        f"No conversation with id {conversation_id[:128]!r}", code="not_found", param=param
    )
