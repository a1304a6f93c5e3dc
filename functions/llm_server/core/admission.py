"""What a turn must pass before it runs, and its settlement once it ends.

A turn the operator pays (`api_key_source: server`: free mode, Bedrock) passes free mode's
minute window, day's tokens and month's budget (`free_mode.py`); a turn of a gateway key passes
its key's rates too, whoever pays (`key_policy.py`). All of them are asked at once
(`core/limits.py`); a key's `monthly_budget_usd` replaces the tenant budgets of the settings.
"""

from __future__ import annotations

from llm_server.core.caller import Caller
from llm_server.core.free_mode import FreeModeQuota, reserve_tokens
from llm_server.core.key_policy import key_gates
from llm_server.core.keys import KeySource
from llm_server.core.limits import Gates, Reservation, joined
from llm_server.providers.base import ChatProvider
from llm_server.usage.ledger import UsageLedger
from llm_server.utils.log import logger
from llm_server.values import GenerationRequest


class TurnAdmission:
    """Admits turns by the quota store's limits (none without one) and settles them."""

    def __init__(self, quota: FreeModeQuota | None, ledger: UsageLedger | None) -> None:
        self._quota = quota
        self._ledger = ledger

    async def admit(
        self, provider: ChatProvider, request: GenerationRequest, caller: Caller
    ) -> Reservation | None:
        """The turn's reservation, or a 429 naming the limit it would pass."""
        if self._quota is None:
            return None
        tokens = reserve_tokens(request)
        parts: list[Gates] = []
        if caller.policy is not None:
            parts.append(key_gates(caller.owner, caller.policy, tokens, self._quota.now()))
        if request.key_source == KeySource.SERVER:
            budget, cost = self._budget(provider, request, caller)
            parts.append(self._quota.gates(caller.owner, tokens, cost, budget))
        gates = joined(*parts)
        if not (gates.windows or gates.counters):
            return None
        return await self._quota.take(gates)

    def _budget(
        self, provider: ChatProvider, request: GenerationRequest, caller: Caller
    ) -> tuple[int | None, int | None]:
        """The caller's budget in picodollars and the turn's worst-case cost (None: none)."""
        if self._ledger is None:
            return None, None
        own = caller.policy.monthly_budget_usd if caller.policy is not None else None
        budget = self._ledger.budget(caller.owner, own)
        price = self._ledger.prices.price(provider.name, request.model)
        if budget is None or price is None:
            return budget, None
        return budget, price.worst_case(reserve_tokens(request, output=0), request.max_tokens)

    async def settle(self, reservation: Reservation, tokens: int, cost: int | None) -> None:
        """Settle with what the turn used; a failure is logged (the answer stands)."""
        assert self._quota is not None  # a reservation comes from it
        try:
            await self._quota.settle(reservation, tokens, cost)
        except Exception:
            logger.exception("could not settle the reservation")
