"""`GET /api/v1/usage`: the caller's own usage and spend this month (or another), and budget.

Identified as sessions are (anonymous callers: 401). `cost_usd` and `remaining_usd` count what
the operator pays (`api_key_source: server`); rows of the caller's own key show what it cost
them, never counted against the budget. Full precision: no rounding to cents.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from llm_server.core.caller import ANONYMOUS, Caller
from llm_server.exceptions import AuthenticationException
from llm_server.stores.usage import UsageRow
from llm_server.usage.ledger import UsageLedger, month_of
from llm_server.usage.pricing import usd
from llm_server.web.dependencies import get_caller

router = APIRouter(prefix="/api/v1", tags=["usage"])
OPERATOR_PAID = "server"


class ModelUsage(BaseModel):
    """One model and key source's usage in the month."""

    model: str
    provider: str
    api_key_source: str
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    cost_usd: float | None
    """None: the model has no price (its usage is still counted)."""


class UsageResponse(BaseModel):
    """A tenant's month: what the operator paid for it, its budget, and usage by model."""

    month: str
    owner: str
    cost_usd: float
    budget_usd: float | None
    remaining_usd: float | None
    by_model: list[ModelUsage]


async def get_usage_ledger(request: Request) -> UsageLedger:
    """The app's usage ledger."""
    ledger: UsageLedger = request.app.state.services.usage
    return ledger


Month = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (UTC); default: this month"),
]


@router.get("/usage", response_model=UsageResponse)
async def usage(
    caller: Annotated[Caller, Depends(get_caller)],
    ledger: Annotated[UsageLedger, Depends(get_usage_ledger)],
    month: Month = None,
) -> UsageResponse:
    """The caller's usage in `month`: tokens and cost by model and key source, and budget."""
    if caller.owner == ANONYMOUS:
        raise AuthenticationException(
            "Usage is kept per caller: send your key in X-Api-Key to see yours",
            code="client_credential_required",
            param="X-Api-Key",
        )
    month = month or month_of(time.time())
    rows = await ledger.month(caller.owner, month)
    paid = sum(row.cost_pico for row in rows if row.api_key_source == OPERATOR_PAID)
    own = caller.policy.monthly_budget_usd if caller.policy is not None else None
    budget = ledger.budget(caller.owner, own)
    return UsageResponse(
        month=month,
        owner=caller.owner,
        cost_usd=usd(paid),
        budget_usd=None if budget is None else usd(budget),
        remaining_usd=None if budget is None else usd(max(0, budget - paid)),
        by_model=[_model_usage(row) for row in rows],
    )


def _model_usage(row: UsageRow) -> ModelUsage:
    return ModelUsage(
        model=row.model,
        provider=row.provider,
        api_key_source=row.api_key_source,
        requests=row.requests,
        input_tokens=row.input_tokens,
        cached_input_tokens=row.cached_input_tokens,
        cache_write_tokens=row.cache_write_tokens,
        output_tokens=row.output_tokens,
        cost_usd=None if row.unpriced else usd(row.cost_pico),
    )
