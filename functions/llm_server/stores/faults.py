"""When a store cannot answer: retried first, then one typed 503, never a bare 500.

DynamoDB clients retry throttling and transient errors with botocore's standard mode (backoff
with jitter, `MAX_ATTEMPTS` in all, short timeouts), so a hot partition slows a request instead
of failing it. What still fails — DynamoDB unreachable or throttling past the retries, SQLite
locked past its busy timeout, read-only or gone — is a store fault: the request middleware
answers it 503 `store_unavailable` with `Retry-After`. An optional store (the shared cache)
catches its faults itself and only makes a request slower.

What a conversation depends on (its session's turns, a stored response) is retried again, past
botocore's attempts, for as long as the request has (`retried`): under 30 % random throttling a
session lost about one turn in thirty to botocore's four attempts alone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# botocore's standard mode: the call and three retries, backing off up to 2, 4 and 8 s (random).
# With these timeouts even a table that never answers gives up within 26 s, inside the chat
# function's 29 s; a throttled call (answered at once) is retried in about 3.5 s at most.
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 2
_FAULT_MODULES = ("botocore.", "sqlite3", "aws_lambda_powertools.utilities.idempotency")
RETRY_SECONDS = 20.0
"""How long `retried` tries without a deadline (the local server has none)."""
# DynamoDB's answers under load (besides a 5xx and `ThrottlingException`).
_LOAD = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "LimitExceededException",
    }
)
# Errors that say the same however often asked: a retry only spends the caller's time.
_LASTING = frozenset(
    {
        "AccessDeniedException",
        "ConditionalCheckFailedException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "ValidationException",
    }
)


def client_config() -> Any:
    """The botocore `Config` for the stores' DynamoDB clients: bounded retries and timeouts."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


def is_store_fault(exc: BaseException) -> bool:
    """Whether an exception is a store failing (botocore, sqlite3, Powertools' persistence).

    Told by the exception's module, so neither library is imported to ask.
    """
    return any(klass.__module__.startswith(_FAULT_MODULES) for klass in type(exc).__mro__[:-1])


def retried(
    call: Callable[[], T],
    deadline: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, made again while it fails as a store under load fails, until `deadline`.

    Blocking (a store's calls run off the event loop). Throttling or a 5xx is tried again after
    a pause (full jitter, from 50 ms doubling up to 1 s) while the pause ends before `deadline`
    (a `time.monotonic()` value; None: `RETRY_SECONDS` from now); anything else, and the last
    failure, is raised.
    """
    end = clock() + RETRY_SECONDS if deadline is None else deadline
    bound = 0.05
    while True:
        try:
            return call()
        except Exception as exc:
            pause = random.uniform(0, bound)
            if not _passing(exc) or clock() + pause >= end:
                raise
        sleep(pause)
        bound = min(1.0, 2 * bound)


def _passing(exc: Exception) -> bool:
    """Whether a store's failure is DynamoDB under load (throttling, a 5xx), which passes.

    Not a refusal that lasts, an unreachable endpoint (botocore's timeouts have waited for it
    already) or a locked SQLite file (its busy timeout has).
    """
    response = getattr(exc, "response", None)
    if not is_store_fault(exc) or not isinstance(response, dict):
        return False
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code not in _LASTING and (status >= 500 or "Throttl" in str(code) or code in _LOAD)
