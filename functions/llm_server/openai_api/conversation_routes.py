"""`/v1/conversations` and their items: HTTP to the caller's conversations and back.

Only the caller who created a conversation reaches it; to anyone else its id is unknown (404).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from llm_server.core.turn import RequestContext
from llm_server.openai_api import conversations as conv
from llm_server.openai_api.conversations import ConversationArchive
from llm_server.openai_api.items import missing
from llm_server.openai_api.protocol import InputItem, OpenAIError
from llm_server.web.dependencies import get_request_context


async def get_conversations(request: Request) -> ConversationArchive:
    """The OpenAI API's conversations, taken from the app."""
    archive: ConversationArchive = request.app.state.services.openai_conversations
    return archive


router = APIRouter(prefix="/v1", tags=["openai-compatible"])
Conversations = Annotated[ConversationArchive, Depends(get_conversations)]
Archive = Conversations
Context = Annotated[RequestContext, Depends(get_request_context)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIError} for status in (400, 401, 404)
}


class NewConversation(BaseModel):
    """`POST /v1/conversations`: its first items and its metadata."""

    model_config = ConfigDict(extra="forbid")

    items: list[InputItem] | None = None
    metadata: dict[str, str] | None = None


class MetadataUpdate(BaseModel):
    """`POST /v1/conversations/{id}`: new metadata."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, str]


class NewItems(BaseModel):
    """`POST /v1/conversations/{id}/items`."""

    model_config = ConfigDict(extra="forbid")

    items: list[InputItem] = Field(min_length=1)


@router.post("/conversations", responses=_ERRORS)
async def create_conversation(
    body: NewConversation, archive: Archive, context: Context
) -> dict[str, Any]:
    """A new conversation, with up to 20 items and 16 metadata pairs."""
    metadata = conv.check_metadata(body.metadata)
    made = await archive.create(context.caller.owner, metadata, body.items or [])
    return conv.conversation_object(made)


@router.get("/conversations/{conversation_id}", responses=_ERRORS)
async def retrieve_conversation(
    conversation_id: str, archive: Archive, context: Context
) -> dict[str, Any]:
    """The caller's conversation."""
    return conv.conversation_object(await archive.get(context.caller.owner, conversation_id))


@router.post("/conversations/{conversation_id}", responses=_ERRORS)
async def update_conversation(
    conversation_id: str, body: MetadataUpdate, archive: Archive, context: Context
) -> dict[str, Any]:
    """Replace its metadata."""
    metadata = conv.check_metadata(body.metadata)
    updated = await archive.update(context.caller.owner, conversation_id, metadata)
    return conv.conversation_object(updated)


@router.delete("/conversations/{conversation_id}", responses=_ERRORS)
async def delete_conversation(
    conversation_id: str, archive: Archive, context: Context
) -> dict[str, Any]:
    """Erase it and its items."""
    await archive.delete(context.caller.owner, conversation_id)
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


@router.post("/conversations/{conversation_id}/items", responses=_ERRORS)
async def add_items(
    conversation_id: str,
    body: NewItems,
    archive: Archive,
    context: Context,
    include: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """Append up to 20 items; the list of the items added."""
    added = await archive.add(context.caller.owner, conversation_id, body.items)
    return conv.item_list(added, False)


@router.get("/conversations/{conversation_id}/items", responses=_ERRORS)
async def list_items(
    conversation_id: str,
    archive: Archive,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    include: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """Its items a page at a time (newest first by default); `after` an item's id.

    `include` asks for extra fields OpenAI computes (search results, logprobs): what is kept
    here is the items whole, so it adds nothing.
    """
    owner = context.caller.owner
    page = await archive.page(owner, conversation_id, limit, after, order == "desc")
    return conv.item_list([json.loads(item.data) for item in page.items], page.has_more)


@router.get("/conversations/{conversation_id}/items/{item_id}", responses=_ERRORS)
async def retrieve_item(
    conversation_id: str, item_id: str, archive: Archive, context: Context
) -> dict[str, Any]:
    """One of its items."""
    owner = context.caller.owner
    await archive.get(owner, conversation_id)  # a missing conversation is named as such
    found = await archive.item(owner, conversation_id, item_id)
    if found is None:
        raise missing(item_id, "item_id")
    return found


@router.delete("/conversations/{conversation_id}/items/{item_id}", responses=_ERRORS)
async def delete_item(
    conversation_id: str, item_id: str, archive: Archive, context: Context
) -> dict[str, Any]:
    """Erase one of its items; the conversation."""
    found = await archive.delete_item(context.caller.owner, conversation_id, item_id)
    return conv.conversation_object(found)
