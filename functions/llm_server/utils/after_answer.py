"""Work a request may leave for after its answer has gone, where the platform runs it there.

A turn's bookkeeping (its usage-ledger row, the settlement of its quota reservation) changes
nothing in the answer, yet on Lambda each write is a DynamoDB round trip on the caller's wait.
Where something runs work after the answer and before the environment may freeze (on Lambda,
the internal extension in `lambda_extension.py`), the stores hand it that work instead; where
nothing does, `defer` says so and they write before answering, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Work = Callable[[], None]


class AfterAnswer(Protocol):
    """Runs work after the current request's answer, before its environment can stop."""

    def defer(self, work: Work, wait: bool = True) -> bool:
        """Take `work` (blocking, and handling its own failures); False: do it now instead.

        `wait=False`: take it only if it can run after the answer without waiting for that to
        be arranged (work cheaper than the wait, such as writing the request's log line); such
        work runs before the rest.
        """
        ...
