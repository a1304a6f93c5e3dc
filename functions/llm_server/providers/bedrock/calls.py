"""bedrock-runtime calls: one client, a thread pool of their own, retries within a time budget.

botocore is synchronous: each call runs on these threads (one a connection, so a call never
queues behind the stores' threads). botocore's own retries are off; ours run within the budget
(`timeout`, or less: the request's deadline). The endpoint is botocore's:
`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` points it at an emulator. botocore is imported on first
use, never at module load. The model provider and the guardrail each have one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from llm_server.exceptions import ConfigurationException, UpstreamTimeoutException
from llm_server.providers.bedrock.errors import classify
from llm_server.providers.retry import Retryable, RetryPolicy, with_retries
from llm_server.utils import aws

T = TypeVar("T")
CONNECT_TIMEOUT = 2.0


class RuntimeCalls:
    """Calls of one bedrock-runtime client; `client` is a test's (under botocore's Stubber)."""

    def __init__(
        self,
        region: str | None,
        timeout: float,
        max_connections: int,
        retry: RetryPolicy,
        client: Any = None,
        name: str = "bedrock",
    ) -> None:
        self.region = region
        self.timeout = timeout
        self.retry = retry
        self._connections = max_connections
        self._client: Any = client
        self._threads = ThreadPoolExecutor(max_connections, thread_name_prefix=name)

    def client(self) -> Any:
        """The bedrock-runtime client, made on first use (thread-safe once made)."""
        if self._client is None:
            from botocore.config import Config
            from botocore.exceptions import NoRegionError

            config = Config(
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=self.timeout,
                retries={"total_max_attempts": 1},
                max_pool_connections=self._connections,
                tcp_keepalive=True,
            )
            try:
                self._client = aws.client("bedrock-runtime", region_name=self.region, config=config)
            except NoRegionError:
                raise ConfigurationException(
                    "Bedrock needs a region: set BEDROCK_REGION (or AWS_REGION)"
                ) from None
        return self._client

    def made_region(self) -> str | None:
        """The region the client was made for, if one was made."""
        return self.region or (self._client.meta.region_name if self._client else None)

    def renew(self) -> None:
        """Forget the client, its connections and credentials (after a SnapStart restore)."""
        self._client = None

    def shutdown(self) -> None:
        """Let the call threads go (at server shutdown)."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    def budget(self, deadline: float | None) -> float:
        """Seconds a call may take: the timeout, or less when the deadline comes sooner."""
        if deadline is None:
            return self.timeout
        return min(self.timeout, deadline - time.monotonic())

    async def retried(
        self, call: Callable[[], T], deadline: float | None, model: str
    ) -> tuple[T, int, float]:
        """`call` on a thread, retried while the budget lasts: (result, attempts, start).

        `GaveUp` (its final error, its attempts) when it cannot; `model` names what was called
        in the errors.
        """
        started = time.monotonic()
        until = started + self.budget(deadline)

        async def attempt() -> T:
            try:
                return await self.on_thread(call, until - time.monotonic())
            except Exception as exc:
                raise classify(exc, model) from None

        result, attempts = await with_retries(attempt, self.retry, until)
        return result, attempts, started

    async def on_thread(self, call: Callable[[], T], budget: float) -> T:
        """`call` on a thread, given `budget` seconds (a `Retryable` timeout past them)."""
        if budget <= 0:
            raise Retryable(UpstreamTimeoutException("Bedrock did not answer in time"), None)
        future = asyncio.get_running_loop().run_in_executor(self._threads, call)
        try:
            return await asyncio.wait_for(future, budget)
        except TimeoutError:
            error = UpstreamTimeoutException("Bedrock did not answer in time")
            raise Retryable(error, None) from None
