"""Free mode spends the server's money: only for known clients, within quotas that hold.

Per client (its owner id: the API Gateway API key's id, or locally a hash of `X-Api-Key`), in the
shared store so every container sees the same numbers:
- at most `FREE_MODE_REQUESTS_PER_MINUTE` requests in any 60 seconds (a sliding window: no
  calendar-minute boundary lets twice the rate through);
- at most `FREE_MODE_TOKENS_PER_DAY` tokens a UTC day. Each request *reserves* its worst case
  (input estimate + `max_tokens`) at admission, atomically, and settles with its real usage at
  the end, so concurrent requests cannot all slip under the quota and overspend it together.
Past a quota: 429 with `Retry-After` (when the oldest request leaves the window, or the next UTC
midnight).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from llm_server.exceptions import RateLimitException
from llm_server.stores.quotas import QuotaStore
from llm_server.values import GenerationRequest

DAY = 86_400
MINUTE = 60.0


@dataclass(frozen=True)
class Reservation:
    """Tokens set aside in one client's day for a request in progress."""

    client: str
    window: str
    tokens: int


class FreeModeQuota:
    """Admit free-mode requests, reserve their tokens and settle them."""

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

    async def admit(self, client: str, tokens: int) -> Reservation:
        """Count one request and reserve `tokens`, or raise `RateLimitException` saying why not."""
        now = self._clock()
        wait = await asyncio.to_thread(self._store.hit, client, "rpm", self._rpm, MINUTE, now)
        if wait > 0:
            raise RateLimitException(
                f"Free mode allows {self._rpm} requests a minute per client",
                code="free_mode_rate_limited",
                retry_after=wait,
            )
        window = f"tpd#{_day(now)}"
        if not await asyncio.to_thread(self._store.add, client, window, tokens, self._tpd, 2 * DAY):
            left = max(0, self._tpd - await asyncio.to_thread(self._store.used, client, window))
            raise RateLimitException(
                f"Free mode's daily quota of {self._tpd} tokens per client has {left} left, and "
                f"this request may need {tokens} (its input and max_tokens): lower max_tokens "
                "or come back tomorrow (UTC)",
                code="free_mode_quota_exceeded",
                retry_after=DAY - now % DAY,
            )
        return Reservation(client, window, tokens)

    async def settle(self, reservation: Reservation, used: int) -> None:
        """Replace the reservation by the tokens the request really used."""
        delta = used - reservation.tokens
        if delta:
            await asyncio.to_thread(
                self._store.add, reservation.client, reservation.window, delta, None, 2 * DAY
            )


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


IMAGE_TOKENS = 1_600  # an upper bound of what OpenAI counts for one image at high detail


def reserve_tokens(request: GenerationRequest, output: int | None = None) -> int:
    """What a free-mode request may cost at most (`output`: tokens it produced, if known).

    Input: 2 UTF-8 bytes a token, on the safe side for English (about 4) and Korean (about 3 a
    syllable, a token or two each); output: `max_tokens` unless known. Reserved from the daily
    quota at admission and settled with the real usage after.
    """
    texts = [request.instructions, *(m.content for m in request.messages)]
    texts += [call.arguments for m in request.messages for call in m.tool_calls]
    texts += [json.dumps(asdict(tool)) for tool in request.options.tools.offered]
    images = sum(len(m.images) for m in request.messages)
    estimate = sum(len(text.encode()) for text in texts) // 2 + len(texts) + IMAGE_TOKENS * images
    return estimate + (request.max_tokens if output is None else output)
