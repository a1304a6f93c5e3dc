"""Free mode spends the server's money: only for known clients, within quotas that hold.

Per client (its owner id: the API Gateway API key's id, or locally a hash of `X-Api-Key`), in the
shared store so every container sees the same numbers:
- at most `FREE_MODE_REQUESTS_PER_MINUTE` requests in any 60 seconds (a sliding window: no
  calendar-minute boundary lets twice the rate through);
- at most `FREE_MODE_TOKENS_PER_DAY` tokens a UTC day. Each request *reserves* its worst case
  (input estimate + `max_tokens`) at admission, atomically, and settles with its real usage at
  the end, so concurrent requests cannot all slip under the quota and overspend it together.
- at most its monthly budget in USD (`TENANT_MONTHLY_BUDGET_USD`, `TENANT_BUDGETS_USD`) of what
  the operator pays: the turn's worst-case cost (at the price sheet's prices) is reserved the
  same way, in picodollars, and settled with the real cost.
Past a quota: 429 with `Retry-After` (when the oldest request leaves the window, the next UTC
midnight, or the next UTC month).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import cast

from llm_server.core.text import text_tokens
from llm_server.exceptions import RateLimitException
from llm_server.stores.quotas import QuotaStore
from llm_server.usage.pricing import usd
from llm_server.utils.after_answer import AfterAnswer
from llm_server.utils.log import logger
from llm_server.values import GenerationRequest

DAY = 86_400
MINUTE = 60.0


MONTH_TTL = 40 * DAY  # a month's budget counter outlives its month


@dataclass(frozen=True)
class Reservation:
    """What a request in progress has set aside.

    Tokens in its client's day; picodollars in its month's budget, if it has one.
    """

    client: str
    window: str
    tokens: int
    budget_window: str = ""
    cost: int = 0


class FreeModeQuota:
    """Admit free-mode requests, reserve their tokens and settle them."""

    def __init__(
        self,
        store: QuotaStore,
        requests_per_minute: int,
        tokens_per_day: int,
        clock: Callable[[], float] = time.time,
        after_answer: AfterAnswer | None = None,
    ) -> None:
        self._store = store
        self._rpm = requests_per_minute
        self._tpd = tokens_per_day
        self._clock = clock
        self._after_answer = after_answer
        # Clients refused by the minute window, until when: asked again before that, they are
        # refused here, with no store call (the window only fills up meanwhile, whoever adds).
        self._refused_until: dict[str, float] = {}

    async def admit(
        self, client: str, tokens: int, cost: int | None = None, budget: int | None = None
    ) -> Reservation:
        """Count one request and reserve `tokens` and its worst-case `cost`; or raise a 429.

        `budget` is picodollars a month (None: no budget); `cost` None is a model without a
        price: nothing is reserved for it. The rate window, the day's tokens and the month's
        budget are separate items: their store calls run at once, so the wait is the window's
        (one write in a warm container) rather than all four in a row (bench/README.md). What
        one took while another refused, or failed, is given back.
        """
        now = self._clock()
        if self._refused_until.get(client, 0.0) > now:
            raise self._too_fast(self._refused_until[client] - now)
        month = time.gmtime(now)
        taken = Reservation(client, f"tpd#{_day(now)}", tokens)
        if budget is not None and cost is not None:
            window = f"usd#{month.tm_year:04d}-{month.tm_mon:02d}"
            taken = replace(taken, budget_window=window, cost=cost)
        results = await asyncio.gather(
            asyncio.to_thread(self._store.hit, client, "rpm", self._rpm, MINUTE, now),
            asyncio.to_thread(self._store.add, client, taken.window, tokens, self._tpd, 2 * DAY),
            *self._budget_call(taken, budget),
            return_exceptions=True,
        )
        wait, reserved = results[0], results[1:]
        budget_held = len(reserved) > 1 and reserved[1] is True
        held = replace(
            taken, tokens=tokens if reserved[0] is True else 0, cost=taken.cost * budget_held
        )
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is None and not wait and all(reserved):
            return held
        if held.tokens or held.cost:
            await self.settle(held, 0, 0)
        if failure is not None:
            raise failure
        if wait:
            seconds = cast(float, wait)  # not a failure: raised above
            self._remember_refusal(client, now + seconds, now)
            raise self._too_fast(seconds)
        if not reserved[0]:
            raise await self._out_of_tokens(taken, now)
        raise await self._out_of_budget(taken, cast(int, budget), now, month)

    def _too_fast(self, wait: float) -> RateLimitException:
        return RateLimitException(
            f"Free mode allows {self._rpm} requests a minute per client",
            code="free_mode_rate_limited",
            retry_after=wait,
        )

    def _remember_refusal(self, client: str, until: float, now: float) -> None:
        """Note `client` refused until `until`; past 10,000 clients, forget the lapsed ones."""
        if len(self._refused_until) >= 10_000:
            self._refused_until = {c: t for c, t in self._refused_until.items() if t > now}
        self._refused_until[client] = until

    def _budget_call(self, taken: Reservation, budget: int | None) -> list[Awaitable[bool]]:
        """The budget's reservation, if the turn has one."""
        if not taken.budget_window:
            return []
        window, add = taken.budget_window, self._store.add
        return [asyncio.to_thread(add, taken.client, window, taken.cost, budget, MONTH_TTL)]

    async def _out_of_tokens(self, taken: Reservation, now: float) -> RateLimitException:
        used = await asyncio.to_thread(self._store.used, taken.client, taken.window)
        return RateLimitException(
            f"Free mode's daily quota of {self._tpd} tokens per client has "
            f"{max(0, self._tpd - used)} left, and this request may need {taken.tokens} (its "
            "input and max_tokens): lower max_tokens or come back tomorrow (UTC)",
            code="free_mode_quota_exceeded",
            retry_after=DAY - now % DAY,
        )

    async def _out_of_budget(
        self, taken: Reservation, budget: int, now: float, month: time.struct_time
    ) -> RateLimitException:
        spent = await asyncio.to_thread(self._store.used, taken.client, taken.budget_window)
        return RateLimitException(
            f"This month's budget of {usd(budget)} USD has {usd(max(0, budget - spent))} USD "
            f"left, and this request may cost {usd(taken.cost)} USD (its input and max_tokens "
            "at its model's prices): lower max_tokens, or wait for the budget to reset at the "
            "start of next month (UTC)",
            code="budget_exceeded",
            retry_after=_next_month(month) - now,
        )

    async def settle(self, reservation: Reservation, used: int, cost: int | None = None) -> None:
        """Replace the reservation by the tokens (and picodollars) the request really used.

        After the answer where that can be done (`after_answer`): until then the reservation
        stands, which errs on the side of the quota.
        """
        work = partial(self._settle_now, reservation, used, cost)
        if self._after_answer is not None and self._after_answer.defer(partial(_logged, work)):
            return
        await asyncio.to_thread(work)

    def _settle_now(self, reservation: Reservation, used: int, cost: int | None) -> None:
        delta = used - reservation.tokens
        if delta:
            self._store.add(reservation.client, reservation.window, delta, None, 2 * DAY)
        spent = reservation.cost - (cost if cost is not None else reservation.cost)
        if reservation.budget_window and spent:
            self._store.add(reservation.client, reservation.budget_window, -spent, None, MONTH_TTL)


def _logged(settle: Callable[[], None]) -> None:
    """A settlement after the answer: a failure is logged (the runner logs its own otherwise)."""
    try:
        settle()
    except Exception:
        logger.exception("could not settle the free-mode reservation")


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
