"""A turn as the Messages API streams it: `message_start`, content blocks, `message_stop`.

Each block opens with `content_block_start`, grows by deltas (`thinking_delta` then its
`signature_delta`, `text_delta`, a tool call's `input_json_delta`) and closes with
`content_block_stop`; `message_delta` says why the turn stopped and its usage. A `ping` goes out
at the start and whenever the model has been silent for `PING_SECONDS` (a long think), so a
client's or a proxy's idle timeout does not cut the stream. A failure once started is an
`error` event, Anthropic's error body in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from llm_server.anthropic_api import translate
from llm_server.anthropic_api.errors import anthropic_error_body
from llm_server.core.thoughts import seal_of
from llm_server.core.turn import Outcome
from llm_server.exceptions import LLMServerException
from llm_server.values import ThoughtDelta
from llm_server.web.sse import sse

PING_SECONDS = 10.0
PING = object()


def event(kind: str, **fields: Any) -> str:
    """One event, its type both in the SSE `event:` line and the data, as Anthropic sends it."""
    return sse({"type": kind, **fields}, event=kind)


async def message_events(
    stream: AsyncIterator[str | ThoughtDelta | Outcome],
    message_id: str,
    model: str,
    shown: bool,
) -> AsyncIterator[str]:
    """The Messages API's events for a turn's stream (see the module)."""
    blocks = _Blocks(shown)
    usage = {"input_tokens": 0, "output_tokens": 0}
    start: dict[str, Any] = {"id": message_id, "type": "message", "role": "assistant"}
    start["model"] = model
    start |= {"content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    yield event("message_start", message=start)
    yield event("ping")
    try:
        async for item in with_pings(stream, PING_SECONDS):
            if item is PING:
                yield event("ping")
            elif isinstance(item, ThoughtDelta):
                for frame in blocks.thought(item):
                    yield frame
            elif isinstance(item, str):
                for frame in blocks.text(item):
                    yield frame
            elif isinstance(item, Outcome):
                for frame in blocks.finish(item):
                    yield frame
    except LLMServerException as exc:
        yield event("error", error=anthropic_error_body(exc)["error"])


class _Blocks:
    """Numbers the content blocks and knows which one is open."""

    def __init__(self, shown: bool) -> None:
        self.index = -1
        self.open: str | None = None
        self.shown = shown

    def _start(self, kind: str, block: dict[str, Any]) -> str:
        self.index += 1
        self.open = kind
        return event("content_block_start", index=self.index, content_block=block)

    def _delta(self, delta: dict[str, Any]) -> str:
        return event("content_block_delta", index=self.index, delta=delta)

    def _stop(self) -> list[str]:
        if self.open is None:
            return []
        self.open = None
        return [event("content_block_stop", index=self.index)]

    def thought(self, delta: ThoughtDelta) -> list[str]:
        ended = delta.ended
        if ended is not None and ended.redacted:  # one block, whole: its data sealed
            block = {"type": "redacted_thinking", "data": seal_of(ended)}
            return [*self._stop(), self._start("redacted_thinking", block), *self._stop()]
        frames = []
        if self.open != "thinking":
            frames += self._stop()
            frames.append(
                self._start("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            )
        if delta.text and self.shown:
            frames.append(self._delta({"type": "thinking_delta", "thinking": delta.text}))
        if delta.ended is not None:  # its seal, packed to come back (core/thoughts.py)
            sealed = seal_of(delta.ended)
            frames.append(self._delta({"type": "signature_delta", "signature": sealed}))
            frames += self._stop()
        return frames

    def text(self, piece: str) -> list[str]:
        frames = []
        if self.open != "text":
            frames += self._stop()
            frames.append(self._start("text", {"type": "text", "text": ""}))
        frames.append(self._delta({"type": "text_delta", "text": piece}))
        return frames

    def finish(self, outcome: Outcome) -> list[str]:
        generation = outcome.generation
        frames = self._stop()
        if self.index < 0 and not generation.tool_calls:  # nothing said: an empty text block
            frames.append(self._start("text", {"type": "text", "text": ""}))
            frames += self._stop()
        for call in generation.tool_calls:
            block = translate.tool_use_block(call)
            frames.append(self._start("tool_use", {**block, "input": {}}))
            frames.append(self._delta({"type": "input_json_delta", "partial_json": call.arguments}))
            frames += self._stop()
        usage = translate.usage_of(generation).model_dump()
        stop = {"stop_reason": translate.stop_reason(generation), "stop_sequence": None}
        frames.append(event("message_delta", delta=stop, usage=usage))
        frames.append(event("message_stop"))
        return frames


async def with_pings(
    stream: AsyncIterator[str | ThoughtDelta | Outcome], seconds: float
) -> AsyncIterator[object]:
    """The stream's items, and `PING` each time `seconds` pass with none."""
    waiting: asyncio.Task[Any] | None = None
    try:
        while True:
            if waiting is None:
                waiting = asyncio.ensure_future(anext(stream))
            done, _ = await asyncio.wait({waiting}, timeout=seconds)
            if not done:
                yield PING
                continue
            try:
                item = waiting.result()
            except StopAsyncIteration:
                return
            waiting = None
            yield item
    finally:
        if waiting is not None:
            waiting.cancel()
