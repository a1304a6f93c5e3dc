"""`Idempotency-Key`: a retried request returns the first result, without a second model call.

Built on Powertools' idempotency persistence layer (DynamoDB on AWS, SQLite locally): the first
request saves an in-progress record, runs, and saves its result; a retry with the same key and
body gets that result back (`Idempotent-Replayed: true`); a retry while the first is still
running gets 409; the same key with a different body gets 422. Keys are scoped to the route and
to the caller (a hash of their API key), so callers cannot collide.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from llm_server.exceptions import BadRequestException, ConflictException, ValidationException

MAX_KEY_LENGTH = 255
IN_PROGRESS_LIMIT = 900.0


class IdempotencyGuard:
    """Run a request at most once per idempotency key."""

    def __init__(self, layer: BasePersistenceLayer, ttl_seconds: int) -> None:
        self._layer = layer
        self._layer.configure(
            IdempotencyConfig(
                event_key_jmespath="key",
                payload_validation_jmespath="body",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=ttl_seconds,
            ),
            key_prefix="llm-server",
        )

    async def run(
        self,
        key: str,
        scope: str,
        body: dict[str, Any],
        call: Callable[[], Awaitable[dict[str, Any]]],
        deadline: float | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """`call()`'s result, run now or replayed: (result, replayed).

        The in-progress record lasts until `deadline` (a `time.monotonic()` value; at most 15
        minutes), after which a retry may run again (a crashed or timed-out first attempt).
        """
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise BadRequestException(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
                param="Idempotency-Key",
                code="invalid_value",
            )
        data = {"key": f"{scope}:{key}", "body": body}
        seconds = IN_PROGRESS_LIMIT if deadline is None else deadline - time.monotonic()
        remaining_ms = int(min(IN_PROGRESS_LIMIT, seconds) * 1000)
        try:
            await asyncio.to_thread(self._layer.save_inprogress, data, remaining_ms)
        except IdempotencyItemAlreadyExistsError:
            return await self._replay(data), True
        except IdempotencyValidationError:  # DynamoDB's layer compares bodies on the put
            raise _reused_key() from None
        try:
            result = await call()
        except Exception as exc:
            await asyncio.to_thread(self._layer.delete_record, data, exc)
            raise
        except BaseException:  # cancelled: forget the attempt too, so a retry runs again
            await asyncio.to_thread(self._layer.delete_record, data, Exception("cancelled"))
            raise
        await asyncio.to_thread(self._layer.save_success, data, result)
        return result, False

    async def _replay(self, data: dict[str, Any]) -> dict[str, Any]:
        try:
            record = await asyncio.to_thread(self._layer.get_record, data)
        except IdempotencyValidationError:
            raise _reused_key() from None
        if record is None or record.status != "COMPLETED" or record.response_data is None:
            raise ConflictException(
                "A request with this Idempotency-Key is still in progress; retry shortly",
                retry_after=1,
            )
        return json.loads(record.response_data)


def _reused_key() -> ValidationException:
    return ValidationException(
        "This Idempotency-Key was already used with a different request body",
        param="Idempotency-Key",
        code="idempotency_key_reused",
    )
