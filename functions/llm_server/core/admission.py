"""What a request must pass before it runs, and its settlement once it ends.

A request the operator pays (`api_key_source: server`: free mode, Bedrock) passes free mode's
minute window, day's tokens and month's budget (`free_mode.py`); a request of a gateway key
passes its key's rates too, whoever pays (`key_policy.py`). All of them are asked at once
(`core/limits.py`); a key's `monthly_budget_usd` replaces the tenant budgets of the settings.
Chat turns and embeddings are admitted alike: by their tokens (the input's estimate and the
most they may produce) and, against a budget, those tokens' worst-case cost.
"""

from __future__ import annotations

from llm_server.core.caller import Caller
from llm_server.core.free_mode import FreeModeQuota
from llm_server.core.key_policy import key_gates
from llm_server.core.keys import KeySource
from llm_server.core.limits import Gates, Reservation, joined
from llm_server.usage.ledger import UsageLedger
from llm_server.utils.log import logger


class Admission:
    """Admits requests by the quota store's limits (none without one) and settles them."""

    def __init__(self, quota: FreeModeQuota | None, ledger: UsageLedger | None) -> None:
        self._quota = quota
        self._ledger = ledger

    async def admit(
        self,
        provider: str,
        model: str,
        key_source: str,
        caller: Caller,
        tokens: int,
        output: int,
    ) -> Reservation | None:
        """The request's reservation, or a 429 naming the limit it would pass.

        `tokens` is its input's estimate and `output` the most it may produce.
        """
        if self._quota is None:
            return None
        total = tokens + output
        parts: list[Gates] = []
        if caller.policy is not None:
            parts.append(key_gates(caller.owner, caller.policy, total, self._quota.now()))
        if key_source == KeySource.SERVER:
            budget, cost = self._budget(provider, model, caller, tokens, output)
            parts.append(self._quota.gates(caller.owner, total, cost, budget))
        gates = joined(*parts)
        if not (gates.windows or gates.counters):
            return None
        return await self._quota.take(gates)

    def _budget(
        self, provider: str, model: str, caller: Caller, tokens: int, output: int
    ) -> tuple[int | None, int | None]:
        """The caller's budget in picodollars and the request's worst-case cost (None: none)."""
        if self._ledger is None:
            return None, None
        own = caller.policy.monthly_budget_usd if caller.policy is not None else None
        budget = self._ledger.budget(caller.owner, own)
        price = self._ledger.prices.price(provider, model)
        if budget is None or price is None:
            return budget, None
        return budget, price.worst_case(tokens, output)

    async def settle(self, reservation: Reservation, tokens: int, cost: int | None) -> None:
        """Settle with what the request used; a failure is logged (the answer stands)."""
        assert self._quota is not None  # a reservation comes from it
        try:
            await self._quota.settle(reservation, tokens, cost)
        except Exception:
            logger.exception("could not settle the reservation")
