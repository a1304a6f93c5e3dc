"""Server-Sent Events: start a stream only once it has produced, and frame its events.

A stream is "primed" before the HTTP response starts: anything that fails before the first item
(a bad key, a busy server, an upstream error) still gets its proper status and JSON error body.
Once streaming, a failure can only be reported in-band, as an error event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def primed(stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """Pull the first item now (raising its error here), then replay it and the rest."""
    first = await anext(stream)

    async def replay() -> AsyncIterator[T]:
        try:
            yield first
            async for item in stream:
                yield item
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    return replay()


def sse(data: Any, event: str | None = None) -> str:
    """One SSE frame; `data` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def sse_response(frames: AsyncIterator[str]) -> StreamingResponse:
    """A `text/event-stream` response that proxies and browsers do not buffer."""
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)
