"""A cap on requests in progress: past it, callers get a 429 with Retry-After at once, no hang."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from llm_server.exceptions import RateLimitException


class ConcurrencyLimiter:
    """Admit at most `limit` requests at a time (the seed's `asyncio.Semaphore(10)`, non-blocking).

    Runs on one event loop, so a plain counter is exact.
    """

    def __init__(self, limit: int, retry_after: float = 1.0) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.in_use = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block, or raise `RateLimitException` if full."""
        if self.in_use >= self.limit:
            raise RateLimitException(
                f"The server is busy: {self.limit} requests are already in progress; retry shortly",
                code="server_busy",
                retry_after=self.retry_after,
            )
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
