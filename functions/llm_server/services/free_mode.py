"""Free mode spends the server's money: it needs a client credential and stays within quotas.

Per client (the API Gateway API key's id, or locally a hash of `X-Api-Key`): at most
`FREE_MODE_REQUESTS_PER_MINUTE` requests a minute and `FREE_MODE_TOKENS_PER_DAY` tokens a UTC
day, counted in the shared store so every container sees the same numbers. Past a quota: 429 with
`Retry-After` (the next minute, or the next UTC midnight).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from llm_server.exceptions import AuthenticationException, RateLimitException
from llm_server.stores.quotas import QuotaStore

DAY = 86_400


class FreeModeQuota:
    """Admit free-mode requests and account for their tokens."""

    def __init__(
        self,
        store: QuotaStore,
        requests_per_minute: int,
        tokens_per_day: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._rpm = requests_per_minute
        self._tpd = tokens_per_day
        self._clock = clock

    async def admit(self, client: str | None) -> None:
        """Raise unless `client` may make one more free-mode request now."""
        if not client:
            raise AuthenticationException(
                "Free mode needs a client credential: send your API key in X-Api-Key",
                code="client_credential_required",
                param="X-Api-Key",
            )
        now = self._clock()
        minute = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now))
        if not await asyncio.to_thread(self._store.add, client, f"rpm#{minute}", 1, self._rpm, 120):
            raise RateLimitException(
                f"Free mode allows {self._rpm} requests a minute per client",
                code="free_mode_rate_limited",
                retry_after=60 - now % 60,
            )
        used = await asyncio.to_thread(self._store.used, client, f"tpd#{_day(now)}")
        if used >= self._tpd:
            raise RateLimitException(
                f"Free mode's daily quota of {self._tpd} tokens is used up for this client",
                code="free_mode_quota_exceeded",
                retry_after=DAY - now % DAY,
            )

    async def spend(self, client: str, tokens: int) -> None:
        """Add a finished request's tokens to the client's day."""
        window = f"tpd#{_day(self._clock())}"
        await asyncio.to_thread(self._store.add, client, window, tokens, None, 2 * DAY)


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))
