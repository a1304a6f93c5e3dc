"""Item lifetimes in epoch seconds, the unit of DynamoDB's TTL attribute.

An item lives *at least* its TTL: the expiry is rounded up to the next whole second, and an item
counts as expired only once the clock has passed it. (Rounding down would cut a 1-second TTL to
anything between 0 and 1 second.)
"""

from __future__ import annotations

import math
import time


def expires_at(ttl_seconds: int) -> int:
    """The epoch second after which an item written now with this TTL is gone."""
    return math.ceil(time.time() + ttl_seconds)


def is_expired(expiration: int | str) -> bool:
    """Whether an item with this `expiration` attribute must no longer be read."""
    return int(expiration) <= time.time()
