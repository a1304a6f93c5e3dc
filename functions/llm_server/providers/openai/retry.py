"""Retries are ours, not the SDK's: which failures deserve another try."""

from __future__ import annotations

RETRYABLE_STATUS = {408, 409, 429}


def is_retryable(exc: Exception) -> bool:
    """Connection failures, timeouts, 408, 409, 429 and 5xx; the time budget decides the rest."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # timeouts included; the budget decides
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and retryable_status(status)


def retryable_status(status: int) -> bool:
    """408, 409, 429 and 5xx: worth another try within the budget."""
    return status in RETRYABLE_STATUS or status >= 500
