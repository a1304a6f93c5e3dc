"""Caps on requests in progress: past one, callers get a 429 with Retry-After at once, no hang."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from llm_server.exceptions import RateLimitException

WAIT_POLL_SECONDS = 0.1


class ConcurrencyLimiter:
    """Admit at most `limit` requests at a time, and at most `per_owner` of any one caller.

    The seed's `asyncio.Semaphore(10)`, non-blocking, with fair shares: one caller holding long
    streams cannot take every slot, so others are still served. Runs on one event loop, so plain
    counters are exact.
    """

    def __init__(self, limit: int, per_owner: int | None = None, retry_after: float = 1.0) -> None:
        self.limit = limit
        self.per_owner = per_owner or limit
        self.retry_after = retry_after
        self.in_use = 0
        self._by_owner: Counter[str] = Counter()

    @asynccontextmanager
    async def slot(self, owner: str, wait_until: float | None = None) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block, or raise `RateLimitException` if full.

        `wait_until` (a `time.monotonic()` value): wait for a slot until then instead (a
        background response, which has no caller waiting on a 429 to retry).
        """
        while (refusal := self._refusal(owner)) is not None:
            if wait_until is None or time.monotonic() >= wait_until:
                raise refusal
            await asyncio.sleep(WAIT_POLL_SECONDS)
        self.in_use += 1
        self._by_owner[owner] += 1
        try:
            yield
        finally:
            self.in_use -= 1
            self._by_owner[owner] -= 1
            if not self._by_owner[owner]:
                del self._by_owner[owner]

    def _refusal(self, owner: str) -> RateLimitException | None:
        """Why `owner` may not have a slot now (None: it may)."""
        if self.in_use >= self.limit:
            return RateLimitException(
                f"The server is busy: {self.limit} requests are already in progress; retry shortly",
                code="server_busy",
                retry_after=self.retry_after,
            )
        if self._by_owner[owner] >= self.per_owner:
            return RateLimitException(
                f"You already have {self.per_owner} requests in progress, the most one client "
                "may hold; retry when one has finished",
                code="client_busy",
                retry_after=self.retry_after,
            )
        return None
