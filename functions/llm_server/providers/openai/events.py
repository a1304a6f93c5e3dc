"""A Responses API event stream read as its events: each `data:` field's JSON object.

Bounded: an event may hold at most `MAX_EVENT_BYTES` (its last one carries the whole response);
more, or an event that is not a JSON object, is `malformed()` (a 502).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from llm_server.providers.openai.errors import malformed

# The largest event a stream may send: its last one carries the whole response (a long reply's
# text and its items twice over); beyond this it is no Responses API stream.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class Events:
    """An opened stream's events, each the JSON object of its `data:` field; `aclose` ends it.

    Reading raises `StreamBroken` (the connection failed), `StreamStalled` (nothing came
    within the budget) or `malformed()` (an event that is not a JSON object).
    """

    def __init__(self, chunks: AsyncIterator[bytes], close: Callable[[], Awaitable[None]]) -> None:
        self._chunks = chunks
        self.aclose = close

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        decoder = EventDecoder()
        async for chunk in self._chunks:
            for data in decoder.feed(chunk):
                yield _event(data)


class StreamBroken(Exception):
    """The connection failed while a stream was being read."""


class StreamStalled(Exception):
    """No part of a stream came within the call's time budget."""


class EventDecoder:
    """Server-sent events from bytes as they come: each event's `data:` lines, joined.

    Other fields (`event:`, `id:`, `retry:`) and comments are skipped: a Responses API event
    names its type in its data too. A line's parts are kept until its end comes, then joined
    once (a long line in many small reads costs its length, not its length times the reads).
    """

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # the line being read, in parts
        self._data: list[bytes] = []  # the event being read, its data lines
        self._held = 0  # bytes in both

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events `chunk` completes, in order."""
        done: list[bytes] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            line = b"".join((*self._partial, chunk[start:end]))
            self._held -= sum(map(len, self._partial))
            self._partial = []
            self._take(line.removesuffix(b"\r"), done)
            start = end + 1
        if start < len(chunk):
            self._partial.append(chunk[start:])
            self._hold(len(chunk) - start)
        return done

    def _take(self, line: bytes, done: list[bytes]) -> None:
        if not line:  # an event's end
            if self._data:
                done.append(b"\n".join(self._data))
            self._held -= sum(map(len, self._data))
            self._data = []
        elif line.startswith(b"data:"):
            self._data.append(line[5:].removeprefix(b" "))
            self._hold(len(self._data[-1]))

    def _hold(self, size: int) -> None:
        self._held += size
        if self._held > MAX_EVENT_BYTES:
            raise malformed()


def _event(data: bytes) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        raise malformed() from None
    if not isinstance(event, dict):
        raise malformed()
    return event
