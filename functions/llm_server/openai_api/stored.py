"""Stored responses: what `store` keeps, `previous_response_id` continues, and GET returns.

A record is one response as it was returned, the input items it was given (kept once: its
share of the conversation is read back from them), its reply, and the id it continued from.
Continuing walks that chain back, newest first, and stops at whichever comes first: the start, a
response no longer stored (expired or deleted: the conversation then starts after it), or the
session bounds (`SESSION_MAX_STORED_TURNS` messages, `SESSION_MAX_BYTES` of everything a message
sends: text, image data, tool calls and results), so the oldest messages leave a long
conversation as they leave a session. Records are the caller's: every read is keyed by the
owner, and another caller's id is simply unknown (404).
"""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from llm_server.exceptions import BadRequestException, NotFoundException
from llm_server.stores.faults import retried
from llm_server.stores.responses import ResponseStore
from llm_server.stores.sessions import SessionLimits
from llm_server.values import ChatMessage, Thought, ToolCall


@dataclass(frozen=True)
class StoredResponse:
    """A stored response, the input items it was given, its reply, the id it continued.

    `messages` is only in records written before the input was kept once (they expire).
    """

    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    previous_response_id: str | None
    reply: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None

    def conversation(self) -> list[ChatMessage]:
        """The share of the conversation that is this response's: its input messages, its reply."""
        if self.messages is not None:
            return [_message(data) for data in self.messages]
        from llm_server.openai_api.protocol import InputItem
        from llm_server.openai_api.translate import split_messages

        items = [InputItem.model_validate(item) for item in self.input_items]
        own = list(split_messages(items, "input")[1])
        return own + ([_message(self.reply)] if self.reply else [])

    def item(self, item_id: str) -> dict[str, Any] | None:
        """One of its items by id (an output item, an input it kept), as it was stored.

        A reasoning item comes with its seal, so a continuation sends it back as it was.
        """
        for item in [*self.response.get("output", ()), *self.input_items]:
            if item.get("id") == item_id:
                if item.get("type") == "reasoning":
                    return self._sealed_reasoning(item)
                return dict(item)
        return None

    def _sealed_reasoning(self, item: dict[str, Any]) -> dict[str, Any]:
        from llm_server.core.thoughts import seal_of

        thoughts = (self.reply or {}).get("thoughts") or ()
        reasoning = [i for i in self.response.get("output", ()) if i.get("type") == "reasoning"]
        index = reasoning.index(item)
        if index >= len(thoughts):
            return dict(item)
        return {**item, "encrypted_content": seal_of(Thought(**thoughts[index]))}

    def encode(self) -> bytes:
        """The record as the store keeps it: compressed JSON."""
        return zlib.compress(json.dumps(asdict(self), ensure_ascii=False).encode(), 6)

    @classmethod
    def decode(cls, record: bytes) -> StoredResponse:
        """A record read back."""
        return cls(**json.loads(zlib.decompress(record)))


class ResponseArchive:
    """Keeps, finds, erases and continues an owner's stored responses (None: storing is off)."""

    def __init__(self, store: ResponseStore | None, limits: SessionLimits) -> None:
        self._store = store
        self._limits = limits

    @property
    def max_bytes(self) -> int:
        """SESSION_MAX_BYTES: the most a continued chain, or a request's references, may hold."""
        return self._limits.max_bytes

    @property
    def enabled(self) -> bool:
        """Whether responses can be stored here (SESSIONS_ENABLED)."""
        return self._store is not None

    async def keep(
        self, owner: str, response_id: str, stored: StoredResponse, deadline: float | None = None
    ) -> None:
        """Store a finished response, retried as long as the request has (`retried`)."""
        put = partial(self.require("store").put, owner, response_id, stored.encode())
        await asyncio.to_thread(retried, put, deadline)

    async def get(self, owner: str, response_id: str, param: str = "response_id") -> StoredResponse:
        """The owner's stored response, or 404 naming `param`."""
        stored = await self._find(owner, response_id, param)
        if stored is None:
            raise _missing(response_id, param)
        return stored

    async def delete(self, owner: str, response_id: str) -> None:
        """Erase the owner's stored response, or 404."""
        if not await asyncio.to_thread(self.require("response_id").delete, owner, response_id):
            raise _missing(response_id, "response_id")

    async def conversation(
        self, owner: str, previous_id: str, deadline: float | None = None
    ) -> tuple[ChatMessage, ...]:
        """The messages up to and including `previous_id`'s reply, within the bounds."""
        param = "previous_response_id"
        stored = await self._find(owner, previous_id, param, deadline)
        if stored is None:
            raise _missing(previous_id, param)
        chain: list[ChatMessage] = []
        size = 0
        while stored is not None:
            messages = stored.conversation()
            size += sum(m.size for m in messages)
            if chain and (
                len(chain) + len(messages) > self._limits.max_turns or size > self._limits.max_bytes
            ):
                break
            chain[:0] = messages
            previous = stored.previous_response_id
            stored = await self._find(owner, previous, param, deadline) if previous else None
        return tuple(chain)

    async def item(
        self, owner: str, item_id: str, param: str, deadline: float | None = None
    ) -> dict[str, Any] | None:
        """An item of one of the owner's stored responses, by its id (None: no such item)."""
        from llm_server.openai_api.items import response_of

        response_id = response_of(item_id)
        if response_id is None or self._store is None:
            return None
        stored = await self._find(owner, response_id, param, deadline)
        return None if stored is None else stored.item(item_id)

    async def _find(
        self, owner: str, response_id: str, param: str, deadline: float | None = None
    ) -> StoredResponse | None:
        read = partial(self.require(param).get, owner, response_id)
        record = await asyncio.to_thread(retried, read, deadline)
        return StoredResponse.decode(record) if record is not None else None

    def require(self, param: str) -> ResponseStore:
        """The store, or a 400 naming `param` when responses are not stored here."""
        if self._store is None:
            raise BadRequestException(
                "This server stores no responses (SESSIONS_ENABLED=false): send store: false "
                "and the whole conversation in input",
                param=param,
            )
        return self._store


def _missing(response_id: str, param: str) -> NotFoundException:
    return NotFoundException(
        f"No stored response with id {response_id[:128]!r}", code="not_found", param=param
    )


def _message(data: dict[str, Any]) -> ChatMessage:
    """A stored reply (or, in older records, a message) as it was (its thoughts too)."""
    calls = tuple(ToolCall(**call) for call in data.get("tool_calls", ()))
    return ChatMessage(
        role=data["role"],
        content=data["content"],
        images=tuple(data.get("images", ())),
        tool_calls=calls,
        tool_call_id=data.get("tool_call_id", ""),
        thoughts=tuple(Thought(**thought) for thought in data.get("thoughts", ())),
    )
