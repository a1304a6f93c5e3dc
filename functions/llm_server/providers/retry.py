"""How hard a provider tries an upstream call again: the backoff, and the failure it carries.

Providers retry themselves, never past the request's time budget; their SDKs' own retries stay
off (OpenAI's `max_retries=0`, botocore's one attempt), so one policy decides for all.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from llm_server.exceptions import LLMServerException

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts after the first, and the backoff's base and cap (seconds)."""

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number `attempt` (1-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class Retryable(Exception):
    """An attempt failed in a way worth another try; carries the final error if none is left."""

    def __init__(self, error: LLMServerException, wait: float | None) -> None:
        self.error = error
        self.wait = wait


class GaveUp(Exception):
    """A call failed for good: its final error and how many attempts it took."""

    def __init__(self, error: LLMServerException, attempts: int) -> None:
        self.error = error
        self.attempts = attempts


async def with_retries(
    attempt: Callable[[], Awaitable[T]], policy: RetryPolicy, deadline: float
) -> tuple[T, int]:
    """Run `attempt` until it succeeds: (its result, attempts); `GaveUp` when it cannot.

    An attempt raising `Retryable` is tried again after the backoff (or the wait upstream asked
    for), unless the retries are spent or the wait would end past `deadline` (a
    `time.monotonic()` value); an `LLMServerException` ends it at once.
    """
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt(), tries
        except Retryable as retry:
            wait = retry.wait if retry.wait is not None else policy.backoff(tries)
            if tries > policy.max_retries or time.monotonic() + wait >= deadline:
                raise GaveUp(retry.error, tries) from None
            await asyncio.sleep(wait)
        except LLMServerException as error:
            raise GaveUp(error, tries) from None
