"""A free-mode admission: its three counters asked at once, and nothing kept from a refusal."""

import asyncio
import threading
import time

import pytest

from helpers.clock import FakeClock
from llm_server.core.free_mode import DAY, FreeModeQuota
from llm_server.exceptions import RateLimitException
from llm_server.stores.quotas import SQLiteQuotaStore
from llm_server.usage.pricing import usd

CLIENT = "key:tenant-a"


class Gated(SQLiteQuotaStore):
    """The real SQLite store; each call waits until `parties` calls are in flight together."""

    def __init__(self, path: str, parties: int, failing: str = "") -> None:
        super().__init__(path)
        self.gate = threading.Barrier(parties, timeout=10)
        self.failing = failing
        self.calls = 0

    def hit(self, *args):
        self.calls += 1
        self.gate.wait()
        return super().hit(*args)

    def add(self, client, window, amount, limit, ttl):
        self.calls += 1
        if limit is not None:  # an admission's reservation, not a give-back
            self.gate.wait()
        if window.startswith(self.failing or "-"):
            raise ConnectionError("the store went away")
        return super().add(client, window, amount, limit, ttl)


def day_and_month(store: SQLiteQuotaStore, clock: FakeClock) -> tuple[int, int]:
    now = time.gmtime(clock())
    day = time.strftime("%Y-%m-%d", now)
    month = f"usd#{now.tm_year:04d}-{now.tm_mon:02d}"
    return store.used(CLIENT, f"tpd#{day}"), store.used(CLIENT, month)


def quota_on(store: Gated, clock: FakeClock, rpm: int = 10, tpd: int = 1000) -> FreeModeQuota:
    return FreeModeQuota(store, requests_per_minute=rpm, tokens_per_day=tpd, clock=clock)


def refused_the_second_time(quota: FreeModeQuota, tokens: int, **price) -> RateLimitException:
    """Admit one request of CLIENT, then the same again: the refusal it gets."""
    asyncio.run(quota.admit(CLIENT, tokens, **price))
    with pytest.raises(RateLimitException) as refused:
        asyncio.run(quota.admit(CLIENT, tokens, **price))
    return refused.value


def test_the_rate_the_day_and_the_budget_are_asked_at_once(tmp_path):
    clock = FakeClock()
    store = Gated(str(tmp_path / "q.db"), parties=3)  # one after another: the gate times out
    quota = quota_on(store, clock, rpm=10, tpd=1000)
    reservation = asyncio.run(quota.admit(CLIENT, 120, cost=5_000, budget=1_000_000))
    assert (reservation.tokens, reservation.cost) == (120, 5_000)
    assert day_and_month(store, clock) == (120, 5_000)


def test_a_request_over_the_rate_keeps_none_of_the_day_or_the_budget(tmp_path):
    clock = FakeClock()
    store = Gated(str(tmp_path / "q.db"), parties=1)
    quota = quota_on(store, clock, rpm=1, tpd=1000)
    refused = refused_the_second_time(quota, 100, cost=10, budget=1_000)
    assert refused.code == "free_mode_rate_limited"
    assert day_and_month(store, clock) == (100, 10)  # the first request's only


def test_a_budget_refusal_gives_the_days_tokens_back_and_says_what_is_left(tmp_path):
    clock = FakeClock()
    store = Gated(str(tmp_path / "q.db"), parties=1)
    quota = quota_on(store, clock, rpm=10, tpd=1000)
    refused = refused_the_second_time(quota, 100, cost=600_000, budget=1_000_000)
    assert refused.code == "budget_exceeded"
    assert f"has {usd(400_000)} USD left" in refused.message
    assert day_and_month(store, clock) == (100, 600_000)


def test_a_day_refusal_says_how_many_tokens_are_left(tmp_path):
    clock = FakeClock()
    store = Gated(str(tmp_path / "q.db"), parties=1)
    quota = quota_on(store, clock, rpm=10, tpd=150)
    refused = refused_the_second_time(quota, 100)
    assert refused.code == "free_mode_quota_exceeded"
    assert "has 50 left" in refused.message
    assert refused.retry_after == DAY - clock() % DAY


def test_a_store_failure_in_one_counter_gives_back_what_the_others_took(tmp_path):
    clock = FakeClock()
    store = Gated(str(tmp_path / "q.db"), parties=3, failing="usd#")
    quota = quota_on(store, clock, rpm=10, tpd=1000)
    with pytest.raises(ConnectionError):
        asyncio.run(quota.admit(CLIENT, 100, cost=10, budget=1_000))
    assert day_and_month(store, clock) == (0, 0)


def test_a_client_refused_by_the_minute_window_is_refused_again_without_store_calls(tmp_path):
    clock = FakeClock()
    store = Gated(str(tmp_path / "q.db"), parties=1)
    quota = quota_on(store, clock, rpm=1, tpd=1000)
    asyncio.run(quota.admit(CLIENT, 10))
    clock.now += 20
    with pytest.raises(RateLimitException) as first:
        asyncio.run(quota.admit(CLIENT, 10))
    calls = store.calls
    clock.now += 30
    with pytest.raises(RateLimitException) as again:
        asyncio.run(quota.admit(CLIENT, 10))
    assert store.calls == calls  # refused here, no store asked
    assert asyncio.run(quota.admit("key:tenant-b", 10)).tokens == 10  # another client is not
    assert (first.value.retry_after, again.value.retry_after) == (40, 10)
    clock.now += 10  # the first request leaves the window
    assert asyncio.run(quota.admit(CLIENT, 10)).tokens == 10
