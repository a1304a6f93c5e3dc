"""Limits a request must pass before it runs, asked at once in the shared store, and settled.

Two kinds (`stores/quotas.py`), both atomic across containers:
- a sliding `Window`: at most `limit` requests in any `seconds` (no clock-minute boundary lets
  twice the rate through);
- a `Counter` a request reserves its worst case from (tokens, picodollars), within `limit`, and
  settles with what it really used once it ends, so concurrent requests cannot all slip under
  a limit and pass it together.
A request's windows and counters are separate items: their store calls run at once, so the wait
is the slowest of them (one write in a warm container) rather than all in a row (bench/README.md).
What one took while another refused, or failed, is given back. Free mode's quotas and budget
(`free_mode.py`) and each gateway key's own rates (`key_policy.py`) are made of these.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, NamedTuple

from llm_server.exceptions import RateLimitException
from llm_server.stores.quotas import QuotaStore
from llm_server.utils.after_answer import AfterAnswer
from llm_server.utils.log import logger


# NamedTuples, not dataclasses: a frozen dataclass costs a cold start ~10x more to declare (its
# methods are generated and compiled at import), and these are made on every chat's import.
class Window(NamedTuple):
    """At most `limit` requests of `client` in any `seconds`.

    `refusal` is the 429, given the seconds until the oldest of them leaves the window.
    """

    client: str
    name: str
    limit: int
    seconds: float
    refusal: Callable[[float], RateLimitException]


class Counter(NamedTuple):
    """`amount` reserved in `client`'s counter `window`, within `limit` (None: only counted).

    `unit` says what settles it (the turn's tokens, or its cost in picodollars); `refusal` is the
    429, given what the counter holds.
    """

    client: str
    window: str
    amount: int
    limit: int | None
    ttl: int
    unit: Literal["tokens", "cost"]
    refusal: Callable[[int], RateLimitException]


class Gates(NamedTuple):
    """What one request must pass: windows first, then counters, each refusal in that order."""

    windows: tuple[Window, ...] = ()
    counters: tuple[Counter, ...] = ()


def joined(*parts: Gates) -> Gates:
    """The gates of every part, in their order."""
    return Gates(
        tuple(w for part in parts for w in part.windows),
        tuple(c for part in parts for c in part.counters),
    )


class Reservation(NamedTuple):
    """The counters a request in progress holds its reservations in."""

    held: tuple[Counter, ...] = ()

    @property
    def tokens(self) -> int:
        """The tokens it holds (each token counter holds the same worst case)."""
        return max((c.amount for c in self.held if c.unit == "tokens"), default=0)

    @property
    def cost(self) -> int:
        """The picodollars it holds in a budget."""
        return max((c.amount for c in self.held if c.unit == "cost"), default=0)

    def to_json(self) -> list[list[Any]]:
        """What settling needs of it, as JSON (a background response's worker settles it)."""
        return [[c.client, c.window, c.amount, c.ttl, c.unit] for c in self.held]

    @classmethod
    def from_json(cls, held: list[list[Any]]) -> Reservation:
        """The reservation `to_json` wrote; its limits are gone (it is only settled now)."""
        return cls(
            tuple(
                Counter(c, w, amount, None, ttl, unit, _spent) for c, w, amount, ttl, unit in held
            )
        )


def _spent(held: int) -> RateLimitException:
    """A restored counter's refusal, never raised: it is settled, not taken again."""
    raise AssertionError("a restored reservation is not taken again")


class Limits:
    """Admit requests through their gates, hold their reservations and settle them."""

    def __init__(
        self,
        store: QuotaStore,
        clock: Callable[[], float] = time.time,
        after_answer: AfterAnswer | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._after_answer = after_answer
        # Windows that refused a client, until when: asked again before that, refused here, with
        # no store call (the window only fills up meanwhile, whoever adds).
        self._refused_until: dict[tuple[str, str], float] = {}

    def now(self) -> float:
        """The time by this store's clock (epoch seconds)."""
        return self._clock()

    async def take(self, gates: Gates) -> Reservation:
        """Pass every window and reserve every counter at once; or give all back and raise.

        A store's failure first, then the first window that refused, then the first counter.
        """
        now = self._clock()
        for window in gates.windows:
            until = self._refused_until.get((window.client, window.name), 0.0)
            if until > now:
                raise window.refusal(until - now)
        hit, add = self._store.hit, self._store.add
        results = await asyncio.gather(
            *(
                asyncio.to_thread(hit, w.client, w.name, w.limit, w.seconds, now)
                for w in gates.windows
            ),
            *(
                asyncio.to_thread(add, c.client, c.window, c.amount, c.limit, c.ttl)
                for c in gates.counters
            ),
            return_exceptions=True,
        )
        waits, taken = results[: len(gates.windows)], results[len(gates.windows) :]
        pairs = zip(gates.counters, taken, strict=True)
        held = Reservation(tuple(counter for counter, ok in pairs if ok is True))
        if len(held.held) == len(gates.counters) and not any(waits):
            return held
        if held.held:
            await self.settle(held, 0, 0)
        raise await self._refusal(gates, results, now)

    async def _refusal(
        self, gates: Gates, results: list[float | bool | BaseException], now: float
    ) -> BaseException:
        """What a refused or failed admission raises (its give-back done)."""
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            return failure
        for window, wait in zip(gates.windows, results, strict=False):
            if wait and not isinstance(wait, BaseException):
                self._remember_refusal((window.client, window.name), now + wait, now)
                return window.refusal(wait)
        taken = results[len(gates.windows) :]
        counter = next(c for c, ok in zip(gates.counters, taken, strict=True) if not ok)
        used = await asyncio.to_thread(self._store.used, counter.client, counter.window)
        return counter.refusal(used)

    def _remember_refusal(self, window: tuple[str, str], until: float, now: float) -> None:
        """Note `window` refused until `until`; past 10,000 of them, forget the lapsed ones."""
        if len(self._refused_until) >= 10_000:
            self._refused_until = {w: t for w, t in self._refused_until.items() if t > now}
        self._refused_until[window] = until

    async def settle(self, reservation: Reservation, used: int, cost: int | None = None) -> None:
        """Replace the reservations by the tokens (and picodollars) the request really used.

        After the answer where that can be done (`after_answer`): until then the reservation
        stands, which errs on the side of the limit. `cost` None: unknown, the reservation stays.
        """
        if not reservation.held:
            return
        work = partial(self._settle_now, reservation, used, cost)
        if self._after_answer is not None and self._after_answer.defer(partial(_logged, work)):
            return
        await asyncio.to_thread(work)

    def _settle_now(self, reservation: Reservation, used: int, cost: int | None) -> None:
        for counter in reservation.held:
            real = used if counter.unit == "tokens" else counter.amount if cost is None else cost
            if real != counter.amount:
                self._store.add(
                    counter.client, counter.window, real - counter.amount, None, counter.ttl
                )


def _logged(settle: Callable[[], None]) -> None:
    """A settlement after the answer: a failure is logged (the runner logs its own otherwise)."""
    try:
        settle()
    except Exception:
        logger.exception("could not settle the reservation")
