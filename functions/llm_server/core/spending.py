"""What a request may spend of the operator's money, and what it is charged, for any kind of model.

A request on the server's key or account is admitted by the free-mode quota (its tokens) and
its tenant's budget (its worst-case cost at its model's price), and settled with what it used;
every request's usage goes into its tenant's ledger. Chat turns (`runner.py`) and embeddings
(`embeddings.py`) take the same two steps, so a budget holds across both.
"""

from __future__ import annotations

import asyncio
import time

from llm_server.core.free_mode import FreeModeQuota, Reservation
from llm_server.core.keys import KeySource
from llm_server.core.text import bounded
from llm_server.core.turn import CALLER_KEY
from llm_server.exceptions import PermissionException
from llm_server.providers.base import Payer
from llm_server.usage.ledger import UsageLedger
from llm_server.usage.pricing import usd
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_generation
from llm_server.values import Generation


class Spending:
    """The quota and the ledger, as every kind of request meets them (either may be absent)."""

    def __init__(self, quota: FreeModeQuota | None, ledger: UsageLedger | None) -> None:
        self._quota = quota
        self._ledger = ledger

    def warn_unpriced(self, provider: str, models: list[str]) -> None:
        """Say at start which of the models the operator's account pays have no price."""
        if self._ledger is not None:
            for model in models:
                self._ledger.prices.price(provider, model)  # warns when unknown

    def require_price(self, provider: str, payer: Payer, model: str) -> None:
        """Refuse a model without a price on the operator's money: its spend has no bound."""
        if self._ledger is None or self._ledger.prices.price(provider, model) is not None:
            return
        remedy = (
            f"send your own key in {CALLER_KEY} to use it"
            if payer == "key"
            else "choose another model"
        )
        raise PermissionException(
            f"{bounded(model)!r} has no price on this server, so it is not served on the "
            f"server's account (a budget could not bound it): {remedy}, or ask the operator "
            "to price it (MODEL_PRICES)",
            code="model_not_priced",
            param="model",
        )

    async def admit(
        self, provider: str, model: str, key_source: str, owner: str, tokens: int, output: int
    ) -> Reservation | None:
        """For a request the operator pays: the quota's reservation for it, or a 429.

        `tokens` is its input's estimate and `output` the most it may produce: both are
        reserved, and, when the tenant has a budget, their worst-case cost at the model's price.
        """
        if key_source != KeySource.SERVER or self._quota is None:
            return None
        ledger = self._ledger
        budget = ledger.budget(owner) if ledger is not None else None
        cost = None
        if budget is not None and ledger is not None:
            price = ledger.prices.price(provider, model)
            if price is not None:
                cost = price.worst_case(tokens, output)
        return await self._quota.admit(owner, tokens + output, cost, budget)

    async def settle(
        self,
        reservation: Reservation | None,
        provider: str,
        key_source: str,
        owner: str,
        used: Generation | None,
        started: float,
    ) -> None:
        """Charge what the request used (None: nothing), and settle its reservation with that.

        Even when the request is cancelled (a dropped stream is charged what it sent).
        `started` is its `time.perf_counter()` at admission, for the metrics.
        """
        import anyio

        cost = None
        if used is not None and self._ledger is not None:
            cost = self._ledger.cost(provider, used)
        if used is not None:
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            record_generation(used, key_source, elapsed_ms, None if cost is None else usd(cost))
        with anyio.CancelScope(shield=True):
            writes = []  # the ledger row and the reservation's settlement, at once
            if used is not None and self._ledger is not None:
                writes.append(self._ledger.record(owner, provider, key_source, used, cost))
            if reservation is not None and self._quota is not None:
                tokens = used.total_tokens if used is not None else 0
                writes.append(self._settled(reservation, tokens, cost if used else 0))
            if len(writes) == 1:  # a task of its own would cost the loop a turn, for nothing
                await writes[0]
            elif writes:
                await asyncio.gather(*writes)

    async def _settled(self, reservation: Reservation, tokens: int, cost: int | None) -> None:
        assert self._quota is not None
        try:
            await self._quota.settle(reservation, tokens, cost)
        except Exception:
            logger.exception("could not settle the free-mode reservation")
