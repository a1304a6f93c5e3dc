"""Item lifetimes in epoch seconds, the unit of DynamoDB's TTL attribute.

An item lives *at least* its TTL: the expiry is rounded up to the next whole second, and an item
counts as expired only once the clock has passed it. (Rounding down would cut a 1-second TTL to
anything between 0 and 1 second.) Both take `now` from the caller, so a store that is given a
clock (tests move one by hand) reads and writes lifetimes by that clock alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Clock = Callable[[], float]
"""Epoch seconds, as `time.time` returns them."""


def expires_at(ttl_seconds: int, now: float) -> int:
    """The epoch second after which an item written at `now` with this TTL is gone."""
    return math.ceil(now + ttl_seconds)


def is_expired(expiration: int | str, now: float) -> bool:
    """Whether an item with this `expiration` attribute must no longer be read at `now`."""
    return int(expiration) <= now
