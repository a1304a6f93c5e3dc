"""Free mode spends the server's money: only for known clients, within quotas that hold.

Per client (its owner id: the API Gateway API key's id, or locally a hash of `X-Api-Key`), in the
shared store so every container sees the same numbers:
- at most `FREE_MODE_REQUESTS_PER_MINUTE` requests in any 60 seconds (a sliding window: no
  calendar-minute boundary lets twice the rate through);
- at most `FREE_MODE_TOKENS_PER_DAY` tokens a UTC day. Each request *reserves* its worst case
  (input estimate + `max_tokens`) at admission, atomically, and settles with its real usage at
  the end, so concurrent requests cannot all slip under the quota and overspend it together.
- at most its monthly budget in USD (`TENANT_MONTHLY_BUDGET_USD`, `TENANT_BUDGETS_USD`, or a
  gateway key's own `monthly_budget_usd`) of what the operator pays: the turn's worst-case cost
  (at the price sheet's prices) is reserved the same way, in picodollars, and settled with the
  real cost.
Past a quota: 429 with `Retry-After` (when the oldest request leaves the window, the next UTC
midnight, or the next UTC month). The windows and counters, asked at once and given back
together, are `core/limits.py`'s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial

from llm_server.core.limits import Counter, Gates, Limits, Reservation, Window
from llm_server.core.text import text_tokens
from llm_server.exceptions import RateLimitException
from llm_server.stores.quotas import QuotaStore
from llm_server.usage.pricing import usd
from llm_server.utils.after_answer import AfterAnswer
from llm_server.values import GenerationRequest

DAY = 86_400
MINUTE = 60.0


MONTH_TTL = 40 * DAY  # a month's budget counter outlives its month


class FreeModeQuota(Limits):
    """Admit free-mode requests, reserve their tokens and settle them (`core/limits.py`)."""

    def __init__(
        self,
        store: QuotaStore,
        requests_per_minute: int,
        tokens_per_day: int,
        clock: Callable[[], float] = time.time,
        after_answer: AfterAnswer | None = None,
    ) -> None:
        super().__init__(store, clock, after_answer)
        self._rpm = requests_per_minute
        self._tpd = tokens_per_day

    async def admit(
        self, client: str, tokens: int, cost: int | None = None, budget: int | None = None
    ) -> Reservation:
        """Count one request and reserve `tokens` and its worst-case `cost`; or raise a 429."""
        return await self.take(self.gates(client, tokens, cost, budget))

    def gates(
        self, client: str, tokens: int, cost: int | None = None, budget: int | None = None
    ) -> Gates:
        """The minute window, the day's tokens and, with a budget, the month's picodollars.

        `budget` is picodollars a month (None: no budget); `cost` None is a model without a
        price: nothing is reserved for it.
        """
        now = self._clock()
        day = Counter(
            client,
            f"tpd#{_day(now)}",
            tokens,
            self._tpd,
            2 * DAY,
            "tokens",
            partial(self._out_of_tokens, tokens, now),
        )
        window = Window(client, "rpm", self._rpm, MINUTE, self._too_fast)
        if budget is None or cost is None:
            return Gates((window,), (day,))
        month = time.gmtime(now)
        spend = Counter(
            client,
            f"usd#{month.tm_year:04d}-{month.tm_mon:02d}",
            cost,
            budget,
            MONTH_TTL,
            "cost",
            partial(_out_of_budget, cost, budget, now, month),
        )
        return Gates((window,), (day, spend))

    def _too_fast(self, wait: float) -> RateLimitException:
        return RateLimitException(
            f"Free mode allows {self._rpm} requests a minute per client",
            code="free_mode_rate_limited",
            retry_after=wait,
        )

    def _out_of_tokens(self, tokens: int, now: float, used: int) -> RateLimitException:
        return RateLimitException(
            f"Free mode's daily quota of {self._tpd} tokens per client has "
            f"{max(0, self._tpd - used)} left, and this request may need {tokens} (its "
            "input and max_tokens): lower max_tokens or come back tomorrow (UTC)",
            code="free_mode_quota_exceeded",
            retry_after=DAY - now % DAY,
        )


def _out_of_budget(
    cost: int, budget: int, now: float, month: time.struct_time, spent: int
) -> RateLimitException:
    return RateLimitException(
        f"This month's budget of {usd(budget)} USD has {usd(max(0, budget - spent))} USD "
        f"left, and this request may cost {usd(cost)} USD (its input and max_tokens "
        "at its model's prices): lower max_tokens, or wait for the budget to reset at the "
        "start of next month (UTC)",
        code="budget_exceeded",
        retry_after=_next_month(month) - now,
    )


def _next_month(month: time.struct_time) -> float:
    """The epoch second the UTC month after `month` starts."""
    import calendar  # only when a budget refuses: not on every cold start's path

    year, number = (
        (month.tm_year + 1, 1) if month.tm_mon == 12 else (month.tm_year, month.tm_mon + 1)
    )
    return float(calendar.timegm((year, number, 1, 0, 0, 0, 0, 0, 0)))


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def reserve_tokens(request: GenerationRequest, output: int | None = None) -> int:
    """What a free-mode request may cost at most (`output`: tokens it produced, if known).

    Input: 2 UTF-8 bytes a token, on the safe side for English (about 4) and Korean (about 3 a
    syllable, a token or two each), and each image as its model's family bills it at most
    (`usage/images.py`); output: `max_tokens` unless known. Reserved from the daily quota at
    admission and settled with the real usage after.
    """
    from llm_server.usage.images import image_tokens

    texts = [request.instructions, *(m.content for m in request.messages)]
    texts += [call.arguments for m in request.messages for call in m.tool_calls]
    texts += [json.dumps(asdict(tool)) for tool in request.options.tools.offered]
    estimate = sum(len(text.encode()) for text in texts) // 2 + len(texts)
    estimate += sum(image_tokens(request.model, url) for m in request.messages for url in m.images)
    return estimate + (request.max_tokens if output is None else output)


def input_estimate(request: GenerationRequest) -> int:
    """The input tokens of a request as a tokenizer would count them (`text_tokens`).

    Images as their model bills them at most. Where a provider cannot count, the estimate
    `count_tokens` answers (it grows with the input; English within about 20 %).
    """
    from llm_server.usage.images import image_tokens

    texts = [request.instructions, *(m.content for m in request.messages)]
    texts += [call.arguments for m in request.messages for call in m.tool_calls]
    texts += [json.dumps(asdict(tool)) for tool in request.options.tools.offered]
    texts += [t for m in request.messages for d in m.documents if (t := d.text) is not None]
    images = sum(image_tokens(request.model, url) for m in request.messages for url in m.images)
    return text_tokens(texts) + 4 * len(request.messages) + images
