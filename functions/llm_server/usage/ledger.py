"""Charge each turn to its tenant: cost from the price sheet, a row in the usage ledger, metrics.

Writes are group commits: turns finishing while one write is under way are added together in
the next (one SQLite transaction, or one DynamoDB update per row). On Lambda, which may freeze
the environment right after the answer, a turn's row is written after its answer by the
after-answer extension (`lambda_extension.py`) and before the environment can freeze; where
there is none (the local server included), each turn waits for the write that holds it, so what
a caller was answered for is in the store, beside its budget's settlement: a crash cannot leave
the budget counting spend the ledger lacks. `flush_seconds` (USAGE_FLUSH_SECONDS, off by default)
answers first and writes each interval's turns added together, a handful of rows whatever the
traffic; a read of the ledger, and the server's shutdown, write what is pending first, but a
crash loses that interval's rows (the budget keeps their spend). A failed write never fails the
caller's request: it is logged and counted (`UsageWriteErrors`). What a turn cost
goes on the request's log line (`cost_usd`, beside its owner) and into the `CostUSD` metric by
model and key source (no tenant dimension).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from weakref import WeakKeyDictionary

from llm_server.config.settings import Settings
from llm_server.stores.usage import UsageRow, UsageStore
from llm_server.usage.pricing import PICO, PriceSheet, parse_overrides, usd
from llm_server.utils.after_answer import AfterAnswer
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_usage_write_error
from llm_server.utils.request_context import annotate
from llm_server.values import Generation

DAY = 86_400


@dataclass(frozen=True)
class Budgets:
    """What each tenant may spend of the operator's money a month, in USD.

    `default` for all (`TENANT_MONTHLY_BUDGET_USD`; None: no budget), `by_owner` for some
    (`TENANT_BUDGETS_USD`, keyed by owner id: `apikey:<API Gateway key id>`, `key:<fingerprint>`
    locally).
    """

    default: float | None = None
    by_owner: dict[str, float] = field(default_factory=dict)

    def of(self, owner: str) -> int | None:
        """The owner's budget in picodollars, or None."""
        value = self.by_owner.get(owner, self.default)
        return None if value is None else picodollars(value)


def picodollars(value: float) -> int:
    """USD as integer picodollars, exactly as written (0.1 is 10**11, not a float's nearest)."""
    return int(Decimal(str(value)) * PICO)


@dataclass
class _Batch:
    """Rows waiting for one write, by (owner, month) and (model, source); `done` when written."""

    done: asyncio.Future[None]
    entries: dict[tuple[str, str], dict[tuple[str, str], UsageRow]] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None  # a deferred batch's write


def month_of(now: float) -> str:
    """The UTC month (`YYYY-MM`) of an epoch time."""
    return time.strftime("%Y-%m", time.gmtime(now))


def day_of(now: float) -> str:
    """The UTC day (`YYYY-MM-DD`) of an epoch time."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


class UsageLedger:
    """Prices turns and keeps each tenant's monthly usage."""

    def __init__(
        self,
        store: UsageStore | None,
        prices: PriceSheet,
        retention_days: int,
        budgets: Budgets | None = None,
        clock: Callable[[], float] = time.time,
        flush_seconds: float = 0.0,
        after_answer: AfterAnswer | None = None,
    ) -> None:
        self._store = store
        self._flush_seconds = flush_seconds
        self._after_answer = after_answer
        self.prices = prices
        self._ttl = retention_days * DAY
        self._budgets = budgets or Budgets()
        self._clock = clock
        # per event loop (a loop that is gone takes its own with it)
        self._batch: WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = WeakKeyDictionary()
        self._writing: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            WeakKeyDictionary()
        )
        self._deferred: set[asyncio.Task[None]] = set()  # deferred writes under way

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: UsageStore | None,
        after_answer: AfterAnswer | None = None,
    ) -> UsageLedger:
        """The price sheet with MODEL_PRICES, the budgets, USAGE_RETENTION_DAYS, _FLUSH_SECONDS."""
        prices = PriceSheet(parse_overrides(settings.model_prices))
        budgets = Budgets(settings.tenant_monthly_budget_usd, settings.tenant_budget_map())
        return cls(
            store,
            prices,
            settings.usage_retention_days,
            budgets,
            flush_seconds=settings.usage_flush_seconds,
            after_answer=after_answer,
        )

    def budget(self, owner: str, own_usd: float | None = None) -> int | None:
        """The tenant's monthly budget in picodollars (None: no budget).

        `own_usd`: a gateway key's own `monthly_budget_usd`, which wins over the settings'.
        """
        return self._budgets.of(owner) if own_usd is None else picodollars(own_usd)

    def cost(self, provider: str, generation: Generation) -> int | None:
        """Picodollars the reply's usage costs (None: its model has no price)."""
        price = self.prices.price(provider, generation.model)
        return None if price is None else price.cost(generation)

    async def record(
        self,
        owner: str,
        provider: str,
        key_source: str,
        generation: Generation,
        cost: int | None,
        daily: bool = False,
    ) -> None:
        """Charge one turn its `cost` (`cost()`'s); a failing store is only logged.

        `daily`: also in the owner's row of the UTC day (`YYYY-MM-DD`, where a month is
        `YYYY-MM`), which the operator's page draws for each gateway key.
        """
        annotate(cost_usd=None if cost is None else usd(cost))
        if self._store is None:
            return
        row = UsageRow(
            model=generation.model,
            provider=provider,
            api_key_source=key_source,
            input_tokens=generation.input_tokens,
            cached_input_tokens=generation.cached_input_tokens,
            cache_write_tokens=generation.cache_write_tokens,
            output_tokens=generation.output_tokens,
            cost_pico=cost or 0,
            unpriced=int(cost is None),
        )
        now = self._clock()
        keys = [(owner, month_of(now))] + [(owner, day_of(now))] * daily
        if self._after_answer is not None and self._after_answer.defer(
            partial(self._add_now, keys, row)
        ):
            return
        try:
            await self._commit(keys, row)
        except Exception:
            _write_failed(row)

    def _add_now(self, keys: list[tuple[str, str]], row: UsageRow) -> None:
        """Write one turn's rows, blocking (after the answer, in the extension's thread)."""
        assert self._store is not None
        try:
            self._store.add({key: [row] for key in keys}, self._ttl)
        except Exception:
            _write_failed(row)

    async def _commit(self, keys: list[tuple[str, str]], row: UsageRow) -> None:
        """Add `row` to the open batch; unless writes are deferred, wait for the write of it.

        The turn that opens a batch writes it (or, deferred, schedules its write), after the
        write before it (one at a time); the batch stays open for others while it waits.
        """
        loop = asyncio.get_running_loop()
        batch = self._batch.get(loop)
        opened = batch is None
        if batch is None:
            batch = self._batch[loop] = _Batch(loop.create_future())
        slot = (row.model, row.api_key_source)
        for key in keys:
            rows = batch.entries.setdefault(key, {})
            rows[slot] = rows[slot].plus(row) if slot in rows else row
        if self._flush_seconds:
            if opened:
                batch.timer = loop.call_later(self._flush_seconds, self._write_later, batch)
            return
        if opened:
            await self._write(loop, batch)
        await asyncio.shield(batch.done)

    def _write_later(self, batch: _Batch) -> None:
        batch.timer = None
        task = asyncio.get_running_loop().create_task(self._write_deferred(batch))
        self._deferred.add(task)
        task.add_done_callback(self._deferred.discard)

    async def _write_deferred(self, batch: _Batch) -> None:
        await self._write(asyncio.get_running_loop(), batch)
        if batch.done.exception() is not None:
            logger.error("could not record usage", exc_info=batch.done.exception())
            record_usage_write_error()

    async def _write(self, loop: asyncio.AbstractEventLoop, batch: _Batch) -> None:
        lock = self._writing.setdefault(loop, asyncio.Lock())
        async with lock:
            if self._batch.get(loop) is batch:
                del self._batch[loop]  # closed: turns from now on open the next
            entries = {key: list(rows.values()) for key, rows in batch.entries.items()}
            try:
                assert self._store is not None
                await asyncio.to_thread(self._store.add, entries, self._ttl)
            except Exception as exc:
                batch.done.set_exception(exc)
                batch.done.exception()  # retrieved: each waiter logs it
            else:
                batch.done.set_result(None)

    async def flush(self) -> None:
        """Write what deferred turns left pending (before a read, and at shutdown)."""
        loop = asyncio.get_running_loop()
        batch = self._batch.get(loop)
        if batch is not None and batch.timer is not None:
            batch.timer.cancel()
            self._write_later(batch)  # now rather than at its time
        if self._deferred:
            await asyncio.wait(set(self._deferred))

    async def month(self, owner: str, month: str) -> list[UsageRow]:
        """A tenant's rows of a month (empty without a store)."""
        if self._store is None:
            return []
        await self.flush()
        return await asyncio.to_thread(self._store.month, owner, month)

    async def days(self, owner: str, first: str, last: str) -> dict[str, list[UsageRow]]:
        """An owner's rows of each UTC day from `first` to `last` (`YYYY-MM-DD`) that has any.

        Days are kept for gateway keys only (`record(daily=True)`).
        """
        if self._store is None:
            return {}
        await self.flush()
        return await asyncio.to_thread(self._store.days, owner, first, last)


def _write_failed(row: UsageRow) -> None:
    """A row that could not be written: logged and counted; the answer stands."""
    logger.exception("could not record usage", extra={"model": row.model})
    record_usage_write_error()
