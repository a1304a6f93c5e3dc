"""The two OpenAI streams as Server-Sent Events: chat completion chunks, and Responses events.

Each turns a turn's deltas and `Outcome` into its protocol's events, and a failure once started
into the protocol's in-band error; a failure before the first event is the route's HTTP error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from pydantic_core import to_jsonable_python

from llm_server.core.turn import Outcome
from llm_server.exceptions import LLMServerException
from llm_server.openai_api import tools, translate
from llm_server.openai_api.errors import openai_error_body
from llm_server.openai_api.protocol import ChunkDelta, ChunkToolCall, ResponsesRequest
from llm_server.openai_api.response_objects import FunctionCallItem, OutputText, ResponseObject
from llm_server.values import Generation
from llm_server.web.sse import sse


async def completion_chunks(
    stream: AsyncIterator[str | Outcome],
    completion_id: str,
    model: str,
    include_usage: bool,
    logprobs: bool = False,
) -> AsyncIterator[str]:
    """`chat.completion.chunk` events, one id, model and created throughout, then `[DONE]`.

    The first delta says the role, as OpenAI writes it: `content: ""` before text, and
    `content: null` beside the tool calls of a reply that is calls. Asked for, the reply's log
    probabilities come whole in the chunk that finishes it.
    """
    created = int(time.time())
    opened = False

    def chunk(model: str, delta: ChunkDelta | None, outcome: Outcome | None = None) -> str:
        generation = outcome.generation if outcome else None
        made = translate.chat_chunk(completion_id, model, created, delta, generation)
        if generation is not None and made.choices and logprobs:
            made.choices[0].logprobs = translate.choice_logprobs(generation)
        data = made.model_dump(mode="json", exclude={"usage"} if made.usage is None else None)
        for choice in data["choices"]:  # a delta names only what it adds; the first, its content
            said = choice["delta"]
            opening = said.get("role") is not None
            choice["delta"] = {
                k: v for k, v in said.items() if v is not None or (opening and k == "content")
            }
        return sse(data)

    try:
        async for item in stream:
            if isinstance(item, str):
                if not opened:
                    yield chunk(model, ChunkDelta(role="assistant", content=""))
                    opened = True
                yield chunk(model, ChunkDelta(content=item))
                continue
            calls = [
                ChunkToolCall(index=index, **tools.chat_tool_call(call).model_dump())
                for index, call in enumerate(item.generation.tool_calls)
            ]
            if calls:  # each call whole, in one delta (the first, when there was no text)
                role = None if opened else "assistant"
                yield chunk(model, ChunkDelta(role=role, tool_calls=calls))
            elif not opened:
                yield chunk(model, ChunkDelta(role="assistant", content=""))
            opened = True
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
    keep: Callable[[ResponseObject, Generation], Awaitable[None]],
) -> AsyncIterator[str]:
    """The Responses API's event sequence, numbered from 0, ending `completed` or `incomplete`.

    `keep` stores the finished response (if asked) before the last event says it is done.

    The message item opens at the first text (or at the end, if the reply has neither text nor
    tool calls); each tool call follows as a `function_call` item with its arguments in one delta.
    """
    events = _ResponseEvents(response_id, body, temperature)
    yield events.emit("response.created", response=events.started)
    yield events.emit("response.in_progress", response=events.started)
    try:
        async for piece in stream:
            if isinstance(piece, str):
                for event in events.text(piece):
                    yield event
                continue
            final = translate.response_object(
                response_id, body.model, events.created, body, piece.temperature, piece.generation
            )
            await keep(final, piece.generation)
            for event in events.finish(final):
                yield event
    except LLMServerException as exc:
        error = openai_error_body(exc)["error"]
        yield events.emit(
            "error", code=error["code"], message=error["message"], param=error["param"]
        )


class _ResponseEvents:
    """Numbers a response's events and tracks which output item is open."""

    def __init__(self, response_id: str, body: ResponsesRequest, temperature: float) -> None:
        self.sequence = -1  # the first event is number 0
        self.created = int(time.time())
        self.response_id = response_id
        self.started = translate.response_object(
            response_id, body.model, self.created, body, temperature
        )
        self.message_open = False
        item_id = translate.output_message(response_id, "", "in_progress").id
        self.where = {"item_id": item_id, "output_index": 0, "content_index": 0}

    def emit(self, kind: str, **fields: Any) -> str:
        self.sequence += 1
        data = to_jsonable_python(fields)
        return sse({"type": kind, "sequence_number": self.sequence, **data}, event=kind)

    def text(self, piece: str) -> Iterator[str]:
        """A text delta, after opening the message item if this is the first."""
        yield from self._open_message()
        yield self.emit("response.output_text.delta", **self.where, delta=piece, logprobs=[])

    def finish(self, final: ResponseObject) -> Iterator[str]:
        """Close the message, send each function call, then the final response."""
        for index, item in enumerate(final.output):
            if isinstance(item, FunctionCallItem):
                yield from self._function_call(index, item)
                continue
            yield from self._open_message()
            part = item.content[0]
            yield self.emit(
                "response.output_text.done", **self.where, text=part.text, logprobs=part.logprobs
            )
            yield self.emit("response.content_part.done", **self.where, part=part)
            yield self.emit("response.output_item.done", output_index=0, item=item)
        kind = "response.completed" if final.status == "completed" else "response.incomplete"
        yield self.emit(kind, response=final)

    def _open_message(self) -> Iterator[str]:
        if self.message_open:
            return
        self.message_open = True
        item = translate.output_message(self.response_id, "", "in_progress")
        yield self.emit("response.output_item.added", output_index=0, item=item)
        yield self.emit("response.content_part.added", **self.where, part=OutputText(text=""))

    def _function_call(self, index: int, item: FunctionCallItem) -> Iterator[str]:
        opened = item.model_copy(update={"arguments": "", "status": "in_progress"})
        where = {"item_id": item.id, "output_index": index}
        yield self.emit("response.output_item.added", output_index=index, item=opened)
        yield self.emit("response.function_call_arguments.delta", **where, delta=item.arguments)
        yield self.emit("response.function_call_arguments.done", **where, arguments=item.arguments)
        yield self.emit("response.output_item.done", output_index=index, item=item)
