"""The operator's actions on keys: create, list, read with spend, change, rotate, revoke.

Shared by the admin API (`admin_api/`) and the CLI (`python -m llm_server.keys`). Every action
that changes a key is logged with who did it (`actor`: the IAM principal on AWS, the admin key
locally, `cli:<user>` from a shell); a secret never is. A change is written over the version it
was read at, and tried again on what another operator wrote meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from llm_server.exceptions import ConflictException, NotFoundException, StoreUnavailableException
from llm_server.keys.records import GatewayKey, KeyPolicy, issue, rotated
from llm_server.stores.keys import KeyStore
from llm_server.usage.ledger import UsageLedger, day_of, month_of
from llm_server.utils.log import logger

OPERATOR_PAID = "server"
DAY = 86_400
ATTEMPTS = 5  # a change racing other operators' is tried this often


@dataclass(frozen=True)
class Spend:
    """What a key's owner used in a month: the operator's money, requests and tokens."""

    month: str
    spend_usd_pico: int
    requests: int
    input_tokens: int
    output_tokens: int


class KeyAdmin:
    """The operator's actions, on a key store and the usage ledger."""

    def __init__(
        self, store: KeyStore, ledger: UsageLedger, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._clock = clock

    async def create(
        self,
        actor: str,
        name: str,
        policy: KeyPolicy,
        metadata: dict[str, str],
        owner: str | None = None,
        secret: str | None = None,
    ) -> tuple[GatewayKey, str]:
        """A new key and its secret.

        `secret` and `owner` given: a credential imported as a key (409 if it is one already).
        """
        key, secret = issue(name, policy, metadata, self._clock(), owner, secret)
        if not await asyncio.to_thread(self._store.create, key):
            raise ConflictException(
                "That credential is a key already: nothing was imported", code="key_exists"
            )
        _audit("create", actor, key)
        return key, secret

    async def page(self, after: str, limit: int) -> tuple[list[GatewayKey], str]:
        """A page of keys, oldest first, and the next page's cursor ("": the last)."""
        return await asyncio.to_thread(self._store.page, after, limit)

    async def get(self, key_id: str) -> GatewayKey:
        """The key of `key_id`, or a 404."""
        key = await asyncio.to_thread(self._store.get, key_id)
        if key is None:
            raise NotFoundException(f"No key has the id {key_id[:64]!r}", code="key_not_found")
        return key

    async def update(
        self, actor: str, key_id: str, change: Callable[[GatewayKey], GatewayKey]
    ) -> GatewayKey:
        """The key with `change` applied to its policy, name or metadata (409 once revoked)."""
        key = await self._changed(key_id, lambda key: _live(key, change(key)))
        _audit("update", actor, key)
        return key

    async def rotate(self, actor: str, key_id: str, grace_seconds: float) -> tuple[GatewayKey, str]:
        """A new secret; the old one works `grace_seconds` longer (0: stops at once)."""
        secrets: list[str] = []

        def change(key: GatewayKey) -> GatewayKey:
            new, secret = rotated(_live(key, key), grace_seconds, self._clock())
            secrets.append(secret)
            return new

        key = await self._changed(key_id, change)
        _audit("rotate", actor, key, grace_seconds=grace_seconds)
        return key, secrets[-1]

    async def revoke(self, actor: str, key_id: str) -> GatewayKey:
        """Revoke the key: every secret of it stops (again: nothing changes)."""
        now = self._clock()
        key = await self._changed(
            key_id, lambda key: key if key.revoked_at else replace(key, revoked_at=now)
        )
        _audit("revoke", actor, key)
        return key

    async def spend(self, key: GatewayKey, month: str | None = None) -> Spend:
        """The key owner's usage in `month` (default: this UTC month)."""
        month = month or month_of(self._clock())
        rows = await self._ledger.month(key.owner, month)
        return Spend(
            month,
            sum(row.cost_pico for row in rows if row.api_key_source == OPERATOR_PAID),
            sum(row.requests for row in rows),
            sum(row.input_tokens for row in rows),
            sum(row.output_tokens for row in rows),
        )

    async def daily(self, key: GatewayKey, days: int) -> list[tuple[str, int]]:
        """The operator's picodollars the key spent on each of the last `days` UTC days."""
        now = self._clock()
        names = [day_of(now - DAY * back) for back in range(days - 1, -1, -1)]
        rows = await self._ledger.days(key.owner, names[0], names[-1])
        paid = {
            day: sum(row.cost_pico for row in found if row.api_key_source == OPERATOR_PAID)
            for day, found in rows.items()
        }
        return [(day, paid.get(day, 0)) for day in names]

    async def _changed(self, key_id: str, change: Callable[[GatewayKey], GatewayKey]) -> GatewayKey:
        for _ in range(ATTEMPTS):
            key = await self.get(key_id)
            new = replace(change(key), updated_at=self._clock())
            if await asyncio.to_thread(self._store.replace, key, new):
                return replace(new, version=key.version + 1)
        raise StoreUnavailableException(
            "Other operators are changing this key at the same time; retry shortly",
            retry_after=1,
        )


def _live(key: GatewayKey, changed: GatewayKey) -> GatewayKey:
    """`changed`, unless `key` is revoked (409): a revoked key stays as it was."""
    if key.revoked_at is not None:
        raise ConflictException("This key is revoked: it cannot change", code="key_revoked")
    return changed


def _audit(action: str, actor: str, key: GatewayKey, **extra: Any) -> None:
    """The admin action's log line: who did what to which key (its prefix, never its secret)."""
    logger.info(
        "admin action",
        extra={
            "admin_action": action,
            "actor": actor,
            "key_id": key.id,
            "key_owner": key.owner,
            "key_prefix": key.prefix,
            **extra,
        },
    )
