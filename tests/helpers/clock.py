"""A clock for the code that takes one (stores, quotas, the key cache): tests move it by hand."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when a test moves it (epoch seconds, so also a wall clock)."""

    def __init__(self, now: float = 1_795_608_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
