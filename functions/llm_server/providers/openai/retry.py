"""Retries are ours, not the SDK's: which failures deserve another try, and how long to wait."""

from __future__ import annotations

import random
from dataclasses import dataclass

from llm_server.exceptions import LLMServerException

RETRYABLE_STATUS = {408, 409, 429}


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


def is_retryable(exc: Exception) -> bool:
    """Connection failures, timeouts, 408, 409, 429 and 5xx; the time budget decides the rest."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # timeouts included; the budget decides
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in RETRYABLE_STATUS or status >= 500)
