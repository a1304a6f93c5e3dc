"""The two OpenAI streams as Server-Sent Events: chat completion chunks, and Responses events.

Each turns a turn's deltas and `Outcome` into its protocol's events, and a failure once started
into the protocol's in-band error; a failure before the first event is the route's HTTP error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from llm_server.core.turn import Outcome
from llm_server.exceptions import LLMServerException
from llm_server.openai_api import translate
from llm_server.openai_api.protocol import ChunkDelta, ResponsesRequest
from llm_server.openai_api.response_objects import OutputText
from llm_server.web.errors import openai_error_body
from llm_server.web.sse import sse


async def completion_chunks(
    stream: AsyncIterator[str | Outcome], completion_id: str, model: str, include_usage: bool
) -> AsyncIterator[str]:
    """`chat.completion.chunk` events, one id, model and created throughout, then `[DONE]`."""
    created = int(time.time())

    def chunk(model: str, delta: ChunkDelta | None, outcome: Outcome | None = None) -> str:
        generation = outcome.generation if outcome else None
        made = translate.chat_chunk(completion_id, model, created, delta, generation)
        data = made.model_dump(mode="json", exclude={"usage"} if made.usage is None else None)
        for choice in data["choices"]:  # a delta names only what it adds
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
        return sse(data)

    yield chunk(model, ChunkDelta(role="assistant", content=""))
    try:
        async for item in stream:
            if isinstance(item, str):
                yield chunk(model, ChunkDelta(content=item))
                continue
            yield chunk(model, ChunkDelta(), item)  # one id, model and created in every chunk
            if include_usage:
                yield chunk(model, None, item)
    except LLMServerException as exc:
        yield sse(openai_error_body(exc))
        return
    yield sse("[DONE]")


async def response_events(
    stream: AsyncIterator[str | Outcome],
    response_id: str,
    body: ResponsesRequest,
    temperature: float,
) -> AsyncIterator[str]:
    """The Responses API's event sequence, numbered from 0, ending `completed` or `incomplete`."""
    sequence = -1  # the first event is number 0
    created = int(time.time())
    item_id = translate.output_message(response_id, "", "in_progress").id
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}

    def event(kind: str, **fields: Any) -> str:
        nonlocal sequence
        sequence += 1
        data = {
            name: value.model_dump(mode="json") if hasattr(value, "model_dump") else value
            for name, value in fields.items()
        }
        return sse({"type": kind, "sequence_number": sequence, **data}, event=kind)

    started = translate.response_object(response_id, body.model, created, body, temperature)
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    item = translate.output_message(response_id, "", "in_progress")
    yield event("response.output_item.added", output_index=0, item=item)
    yield event("response.content_part.added", **where, part=OutputText(text=""))
    try:
        async for piece in stream:
            if isinstance(piece, str):
                yield event("response.output_text.delta", **where, delta=piece, logprobs=[])
                continue
            text = piece.generation.text
            yield event("response.output_text.done", **where, text=text, logprobs=[])
            yield event("response.content_part.done", **where, part=OutputText(text=text))
            final = translate.response_object(
                response_id, body.model, created, body, piece.temperature, piece.generation
            )
            yield event("response.output_item.done", output_index=0, item=final.output[0])
            kind = "response.completed" if final.status == "completed" else "response.incomplete"
            yield event(kind, response=final)
    except LLMServerException as exc:
        error = openai_error_body(exc)["error"]
        yield event("error", code=error["code"], message=error["message"], param=error["param"])
