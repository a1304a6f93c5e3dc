"""The two OpenAI streams as Server-Sent Events: chat completion chunks, and Responses events.

Each turns a turn's deltas and `Outcome` into its protocol's events, and a failure once started
into the protocol's in-band error; a failure before the first event is the route's HTTP error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from llm_server.core.turn import Outcome
from llm_server.exceptions import LLMServerException
from llm_server.openai_api import reasoning, tools, translate
from llm_server.openai_api.errors import openai_error_body
from llm_server.openai_api.protocol import ChunkDelta, ChunkToolCall, ResponsesRequest
from llm_server.openai_api.response_objects import (
    FunctionCallItem,
    OutputMessage,
    OutputText,
    ReasoningItem,
    ResponseObject,
)
from llm_server.values import Generation, ThoughtDelta
from llm_server.web.sse import sse

Stream = AsyncIterator[str | ThoughtDelta | Outcome]


async def completion_chunks(
    stream: Stream,
    completion_id: str,
    model: str,
    include_usage: bool,
    logprobs: bool = False,
) -> AsyncIterator[str]:
    """`chat.completion.chunk` events, one id, model and created throughout, then `[DONE]`.

    The first delta says the role, as OpenAI writes it: `content: ""` before text, and
    `content: null` beside the tool calls of a reply that is calls. Reasoning streams as
    `reasoning_content` deltas, each thought's sealed block (`thinking_blocks`) at its end.
    Asked for, the reply's log probabilities come whole in the chunk that finishes it.
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

    def role() -> Literal["assistant"] | None:
        nonlocal opened
        first, opened = not opened, True
        return "assistant" if first else None

    try:
        async for item in stream:
            if isinstance(item, ThoughtDelta):
                yield chunk(model, _thought_delta(item, role()))
                continue
            if isinstance(item, str):
                if not opened:
                    yield chunk(model, ChunkDelta(role=role(), content=""))
                yield chunk(model, ChunkDelta(content=item))
                continue
            calls = [
                ChunkToolCall(index=index, **tools.chat_tool_call(call).model_dump())
                for index, call in enumerate(item.generation.tool_calls)
            ]
            if calls:  # each call whole, in one delta (the first, when there was no text)
                yield chunk(model, ChunkDelta(role=role(), tool_calls=calls))
            elif not opened:
                yield chunk(model, ChunkDelta(role=role(), content=""))
            yield chunk(model, ChunkDelta(), item)  # one id, model and created in every chunk
            if include_usage:
                yield chunk(model, None, item)
    except LLMServerException as exc:
        yield sse(openai_error_body(exc))
        return
    yield sse("[DONE]")


def _thought_delta(delta: ThoughtDelta, role: Literal["assistant"] | None) -> ChunkDelta:
    blocks = [reasoning.thinking_block(delta.ended)] if delta.ended is not None else None
    return ChunkDelta(
        role=role,
        reasoning_content=delta.text or None,
        thinking_blocks=blocks,
    )


async def response_events(
    stream: Stream,
    response_id: str,
    body: ResponsesRequest,
    temperature: float,
    keep: Callable[[ResponseObject, Generation], Awaitable[None]],
) -> AsyncGenerator[str, None]:
    """The Responses API's event sequence, numbered from 0, ending `completed` or `incomplete`.

    `keep` stores the finished response (if asked) before the last event says it is done.

    Items open as they begin, at the next `output_index`: each reasoning item with its first
    delta (closed when its thought ends), the message item at the first text (or at the end,
    if the reply has neither text nor tool calls); each tool call follows as a `function_call`
    item with its arguments in one delta. Every item added is done, at its own index.
    """
    events = _ResponseEvents(response_id, body, temperature)
    yield events.emit("response.created", response=events.started)
    yield events.emit("response.in_progress", response=events.started)
    try:
        async for piece in stream:
            if isinstance(piece, ThoughtDelta):
                for event in events.thought(piece):
                    yield event
                continue
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
    """Numbers a response's events and its output items, and knows which item is open."""

    def __init__(self, response_id: str, body: ResponsesRequest, temperature: float) -> None:
        self.sequence = -1  # the first event is number 0
        self.created = int(time.time())
        self.response_id = response_id
        self.sealed = "reasoning.encrypted_content" in (body.include or ())
        self.started = translate.response_object(
            response_id, body.model, self.created, body, temperature
        )
        self.items: list[str] = []  # the kind of each item opened, by output_index
        self.open: str | None = None  # the kind of the item open now
        self.thoughts = 0

    def emit(self, kind: str, **fields: Any) -> str:
        self.sequence += 1
        data = to_jsonable_python(fields)
        return sse({"type": kind, "sequence_number": self.sequence, **data}, event=kind)

    @property
    def _index(self) -> int:
        return len(self.items) - 1

    def _open(self, kind: str, item: Any) -> str:
        self.items.append(kind)
        self.open = kind
        return self.emit("response.output_item.added", output_index=self._index, item=item)

    def thought(self, delta: ThoughtDelta) -> Iterator[str]:
        """A reasoning delta, after opening its item; its end closes the item."""
        item_id = translate.reasoning_id(self.response_id, self.thoughts)
        where = {"item_id": item_id, "output_index": len(self.items)}
        if self.open != "reasoning":
            opened = ReasoningItem(id=item_id, status="in_progress")
            yield self._open("reasoning", opened)
            if delta.summary:
                part = {"type": "summary_text", "text": ""}
                yield self.emit(
                    "response.reasoning_summary_part.added", **where, summary_index=0, part=part
                )
        where["output_index"] = self._index
        if delta.text:
            kind, place = (
                ("response.reasoning_summary_text.delta", {"summary_index": 0})
                if delta.summary
                else ("response.reasoning_text.delta", {"content_index": 0})
            )
            yield self.emit(kind, **where, **place, delta=delta.text)
        if delta.ended is not None:
            item = reasoning.reasoning_item(item_id, delta.ended, self.sealed)
            yield self.emit("response.output_item.done", output_index=self._index, item=item)
            self.open, self.thoughts = None, self.thoughts + 1

    def text(self, piece: str) -> Iterator[str]:
        """A text delta, after opening the message item if this is the first."""
        yield from self._open_message()
        where = self._message_place()
        yield self.emit("response.output_text.delta", **where, delta=piece, logprobs=[])

    def finish(self, final: ResponseObject) -> Iterator[str]:
        """Close the message, send each function call, then the final response."""
        for index, item in enumerate(final.output):
            if isinstance(item, ReasoningItem):
                if index >= len(self.items):  # a thought that came whole, with no deltas
                    yield self._open("reasoning", item)
                    yield self.emit("response.output_item.done", output_index=index, item=item)
                continue
            if isinstance(item, FunctionCallItem):
                yield from self._function_call(index, item)
                continue
            yield from self._message_done(item)
        self.open = None
        kind = "response.completed" if final.status == "completed" else "response.incomplete"
        yield self.emit(kind, response=final)

    def _message_place(self) -> dict[str, Any]:
        item_id = translate.output_message(self.response_id, "", "in_progress").id
        index = self.items.index("message")
        return {"item_id": item_id, "output_index": index, "content_index": 0}

    def _open_message(self) -> Iterator[str]:
        if "message" in self.items:
            return
        item = translate.output_message(self.response_id, "", "in_progress")
        yield self._open("message", item)
        where = self._message_place()
        yield self.emit("response.content_part.added", **where, part=OutputText(text=""))

    def _message_done(self, item: OutputMessage) -> Iterator[str]:
        yield from self._open_message()
        where = self._message_place()
        part = item.content[0]
        yield self.emit(
            "response.output_text.done", **where, text=part.text, logprobs=part.logprobs
        )
        yield self.emit("response.content_part.done", **where, part=part)
        yield self.emit("response.output_item.done", output_index=where["output_index"], item=item)

    def _function_call(self, index: int, item: FunctionCallItem) -> Iterator[str]:
        opened = item.model_copy(update={"arguments": "", "status": "in_progress"})
        where = {"item_id": item.id, "output_index": index}
        self.items.append("function_call")
        yield self.emit("response.output_item.added", output_index=index, item=opened)
        yield self.emit("response.function_call_arguments.delta", **where, delta=item.arguments)
        yield self.emit("response.function_call_arguments.done", **where, arguments=item.arguments)
        yield self.emit("response.output_item.done", output_index=index, item=item)
