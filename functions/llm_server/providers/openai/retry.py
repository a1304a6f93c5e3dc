"""Which upstream statuses deserve another try (the retries themselves: providers/retry.py)."""

from __future__ import annotations

RETRYABLE_STATUS = {408, 409, 429}


def retryable_status(status: int) -> bool:
    """408, 409, 429 and 5xx: worth another try within the budget."""
    return status in RETRYABLE_STATUS or status >= 500
