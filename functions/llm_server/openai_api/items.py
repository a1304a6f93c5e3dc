"""Items as the Responses API keeps them: their ids, their stored form, and references to them.

Every item this server makes carries its response's id (`msg_<r>`, `fc_<r>_<n>`, `rs_<r>_<n>`,
and the input items it kept, `<prefix><r>_<n>`), so an `item_reference` to one finds its stored
response without an index; an item added to a conversation directly has an id of its own and
is found in that conversation. A reference reaches only the caller's own responses and
conversations: another owner's item is as unknown as a missing one (404).
"""

from __future__ import annotations

import uuid
from typing import Any

from llm_server.exceptions import NotFoundException
from llm_server.openai_api.protocol import InputItem

PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
}


def new_item_id(kind: str) -> str:
    """A new id for an item of `kind` that no response made (added to a conversation)."""
    return f"{PREFIXES.get(kind, 'item_')}{uuid.uuid4().hex}"


def stored_form(item: InputItem, item_id: str) -> dict[str, Any]:
    """An input item as it is kept and listed: its id, a message's text as a content part."""
    data = item.model_dump(exclude_none=True)
    if item.type == "message" and isinstance(item.content, str):
        part = "output_text" if item.role == "assistant" else "input_text"
        data["content"] = [{"type": part, "text": item.content}]
    if item.type in ("message", "function_call", "function_call_output"):
        data.setdefault("status", "completed")
    return {"id": item_id, **data}


def response_of(item_id: str) -> str | None:
    """The id of the response an item of this server's was made in (None: not one of those)."""
    prefix, _, rest = item_id.partition("_")
    if f"{prefix}_" not in PREFIXES.values() or not rest:
        return None
    return f"resp_{rest.split('_', 1)[0]}"


def as_input(stored: dict[str, Any]) -> InputItem:
    """A stored item back as an input item (its id and status left: input has none)."""
    data = {key: value for key, value in stored.items() if key not in ("id", "status")}
    return InputItem.model_validate(data)


def missing(item_id: str, param: str) -> NotFoundException:
    """The 404 of a reference to an item that is not the caller's (or not at all)."""
    return NotFoundException(
        f"No item with id {item_id[:128]!r} in your stored responses or conversation",
        code="not_found",
        param=param,
    )
