"""A Responses request as a job: its turn, what it continues, and what is kept when it ends.

One job runs whole, streamed or in the background (`background.py`): the turn is made once
(`prepare`), with its input's `item_reference`s resolved to the caller's own stored items and
its history read (once the turn holds its slot) from the response it continues
(`previous_response_id`) or its conversation (`conversation`, never both, as at OpenAI); when it
ends (`finish`) the response is stored unless `store: false`, and its input and output items are
appended to its conversation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from llm_server.core.turn import RequestContext, Turn
from llm_server.exceptions import BadRequestException, PayloadTooLargeException
from llm_server.openai_api import items, translate
from llm_server.openai_api.conversations import ConversationArchive
from llm_server.openai_api.protocol import InputItem, ResponsesRequest
from llm_server.openai_api.response_objects import ResponseObject
from llm_server.openai_api.stored import ResponseArchive, StoredResponse
from llm_server.stores.faults import is_store_fault
from llm_server.utils.log import logger
from llm_server.values import ChatMessage, Generation


@dataclass
class Job:
    """What a response needs to run and be kept.

    Its request (references resolved), its id, its owner, its conversation, and the turn.
    """

    body: ResponsesRequest
    response_id: str
    owner: str
    turn: Turn
    conversation: str | None = None
    deadline: float | None = None
    kept: list[dict[str, Any]] = field(default_factory=list)  # its input items, as stored


def conversation_id(body: ResponsesRequest) -> str | None:
    """`conversation` as an id (`"conv_..."` or `{"id": "conv_..."}`), checked; None if absent."""
    value = body.conversation
    if value is None:
        return None
    if body.previous_response_id:
        raise BadRequestException(
            "previous_response_id and conversation cannot be used together: a conversation "
            "keeps its own history",
            param="conversation",
        )
    found = value if isinstance(value, str) else value.get("id")
    if not isinstance(found, str) or not found:
        raise BadRequestException(
            'conversation: a conversation id, or {"id": ...}', param="conversation"
        )
    return found


async def resolved(
    body: ResponsesRequest,
    owner: str,
    archive: ResponseArchive,
    conversations: ConversationArchive,
    deadline: float | None,
) -> ResponsesRequest:
    """The request with each `item_reference` in `input` replaced by the item it names.

    Found among the caller's stored responses (by the response its id names) or in the
    request's conversation; another caller's item is as unknown as a missing one (404).
    """
    given = input_items(body)
    if not any(item.type == "item_reference" for item in given):
        return body
    conversation = conversation_id(body)
    found: list[InputItem] = []
    size = 0  # what the references bring in: a few bytes each may name a large item
    for index, item in enumerate(given):
        if item.type != "item_reference":
            found.append(item)
            continue
        param = f"input.{index}.id"
        if not item.id:
            raise BadRequestException(
                f"{param}: an item_reference needs the item's id", param=param
            )
        stored = await archive.item(owner, item.id, param, deadline)
        if stored is None and conversation is not None:
            stored = await conversations.item(owner, conversation, item.id, deadline)
        if stored is None:
            raise items.missing(item.id, param)
        size += len(json.dumps(stored, ensure_ascii=False).encode())
        if size > archive.max_bytes:
            raise PayloadTooLargeException(
                f"input: the items its item_references name hold more than {archive.max_bytes:,} "
                "bytes (SESSION_MAX_BYTES)",
                param="input",
            )
        found.append(items.as_input(stored))
    return body.model_copy(update={"input": found})


def with_history(job: Job, archive: ResponseArchive, conversations: ConversationArchive) -> Job:
    """The job whose turn reads, once it holds its slot, what it continues."""
    owner, deadline, body = job.owner, job.deadline, job.body
    previous = body.previous_response_id
    if previous:
        earlier = lambda: archive.conversation(owner, previous, deadline)  # noqa: E731
    elif job.conversation is not None:
        conversation = job.conversation
        earlier = lambda: conversations.history(owner, conversation, deadline)  # noqa: E731
    else:
        return job
    return replace(job, turn=replace(job.turn, earlier=earlier))


def new_job(
    body: ResponsesRequest, turn: Turn, context: RequestContext, response_id: str | None = None
) -> Job:
    """The job of a request whose turn is made; its input items as they will be kept."""
    response_id = response_id or translate.new_id("resp_")
    suffix = response_id.removeprefix("resp_")
    kept = [
        items.stored_form(item, f"{items.PREFIXES[item.type]}{suffix}_{index}")
        for index, item in enumerate(input_items(body))
    ]
    return Job(
        body,
        response_id,
        context.caller.owner,
        turn,
        conversation_id(body),
        context.deadline,
        kept,
    )


async def finish(
    job: Job,
    made: ResponseObject,
    generation: Generation,
    archive: ResponseArchive,
    conversations: ConversationArchive,
) -> None:
    """Keep what a finished response leaves.

    It (unless `store: false`; if the store fails, the response says `store: false`), and its
    items in its conversation.
    """
    if job.body.store:
        try:
            record = stored_record(job, made, generation)
            await archive.keep(job.owner, job.response_id, record, job.deadline)
        except Exception as exc:
            if not is_store_fault(exc):
                raise
            logger.exception("could not store the response")
            made.store = False
    if job.conversation is not None:
        output = [item.model_dump(mode="json", exclude_none=True) for item in made.output]
        await conversations.remember(job.owner, job.conversation, job.kept + output, job.deadline)


def input_items(body: ResponsesRequest) -> list[InputItem]:
    """A response's input as items (a string is one user message)."""
    if isinstance(body.input, str):
        return [InputItem(role="user", content=body.input)]
    return body.input


def stored_record(job: Job, made: ResponseObject, generation: Generation) -> StoredResponse:
    """What is stored of a response: it, its input items and its reply (each kept once)."""
    reply = ChatMessage(
        "assistant", generation.text, tool_calls=generation.tool_calls, thoughts=generation.thoughts
    )
    return StoredResponse(
        response=made.model_dump(mode="json"),
        input_items=job.kept,
        reply=asdict(reply),
        previous_response_id=job.body.previous_response_id,
    )
