"""When a store cannot answer: retried first, then one typed 503, never a bare 500.

DynamoDB clients retry throttling and transient errors with botocore's standard mode (backoff
with jitter, `MAX_ATTEMPTS` in all, short timeouts), so a hot partition slows a request instead
of failing it. What still fails — DynamoDB unreachable or throttling past the retries, SQLite
locked past its busy timeout, read-only or gone — is a store fault: the request middleware
answers it 503 `store_unavailable` with `Retry-After`. An optional store (the shared cache)
catches its faults itself and only makes a request slower.
"""

from __future__ import annotations

from typing import Any

# botocore's standard mode: the call and three retries, backing off up to 2, 4 and 8 s (random).
# With these timeouts even a table that never answers gives up within 26 s, inside the chat
# function's 29 s; a throttled call (answered at once) is retried in about 3.5 s at most.
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 2
_FAULT_MODULES = ("botocore.", "sqlite3", "aws_lambda_powertools.utilities.idempotency")


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
