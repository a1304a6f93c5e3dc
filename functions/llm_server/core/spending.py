"""What a request may spend of the operator's money, and what it is charged, for any kind of model.

A request on the server's key or account must have a price (else its spend has no bound); it is
admitted by the limits it meets (`admission.py`: free mode's, its tenant's budget, a gateway
key's rates) and settled with what it used; every request's usage goes into its tenant's ledger
(a gateway key's by day too). Chat turns (`runner.py`) and embeddings (`embeddings.py`) take the
same steps, so a budget and a key's limits hold across both.
"""

from __future__ import annotations

import asyncio
import time

from llm_server.core.admission import Admission
from llm_server.core.caller import Caller
from llm_server.core.free_mode import FreeModeQuota
from llm_server.core.limits import Reservation
from llm_server.core.text import bounded
from llm_server.core.turn import CALLER_KEY
from llm_server.exceptions import PermissionException
from llm_server.providers.base import Payer
from llm_server.usage.ledger import UsageLedger
from llm_server.usage.pricing import usd
from llm_server.utils.metrics import record_generation
from llm_server.values import Generation


class Spending:
    """The limits and the ledger, as every kind of request meets them (either may be absent)."""

    def __init__(self, quota: FreeModeQuota | None, ledger: UsageLedger | None) -> None:
        self._ledger = ledger
        self._admission = Admission(quota, ledger)

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
        self, provider: str, model: str, key_source: str, caller: Caller, tokens: int, output: int
    ) -> Reservation | None:
        """The request's reservation (`tokens` of input, `output` at most), or a 429."""
        return await self._admission.admit(provider, model, key_source, caller, tokens, output)

    async def give_back(self, reservation: Reservation) -> None:
        """Return a reservation whose request never ran (even when it is being cancelled)."""
        import anyio

        if reservation.held:
            with anyio.CancelScope(shield=True):
                await self._admission.settle(reservation, 0, 0)

    async def settle(
        self,
        reservation: Reservation | None,
        provider: str,
        key_source: str,
        caller: Caller,
        used: Generation | None,
        started: float,
    ) -> None:
        """Charge what the request used (None: nothing), and settle its reservation with that.

        Even when the request is cancelled (a dropped stream is charged what it sent). A
        gateway key's requests are kept by day too, for the operator's page. `started` is the
        request's `time.perf_counter()` at admission, for the metrics.
        """
        import anyio

        cost, guarded = None, 0  # the model's, and the guardrail's checks' (the operator's)
        if used is not None and self._ledger is not None:
            cost, guarded = self._ledger.cost(provider, used), self._ledger.guardrail_cost(used)
        if used is not None:
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            record_generation(used, key_source, elapsed_ms, None if cost is None else usd(cost))
        with anyio.CancelScope(shield=True):
            writes = []  # the ledger rows and the reservation's settlement, at once
            if used is not None and self._ledger is not None:
                daily = caller.policy is not None
                writes.append(
                    self._ledger.record(
                        caller.owner, provider, key_source, used, cost, guarded, daily
                    )
                )
            if reservation is not None and reservation.held:
                tokens = used.total_tokens if used is not None else 0
                spent = None if cost is None else cost + guarded
                writes.append(self._admission.settle(reservation, tokens, spent if used else 0))
            if len(writes) == 1:  # a task of its own would cost the loop a turn, for nothing
                await writes[0]
            elif writes:
                await asyncio.gather(*writes)
