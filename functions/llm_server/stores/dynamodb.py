"""What the DynamoDB stores share: the table's name and a client made on first use."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

from llm_server.utils import aws

BATCH = 25  # the most items one BatchWriteItem takes
_generation = 0  # of the clients the stores make: `renew_clients` starts a new one
# A free-mode admission asks three counters at once, each from its own thread, so the first use
# of a store may come from three threads together: one client, made once.
_making = threading.Lock()


def prime_clients() -> None:
    """Load botocore and DynamoDB's service model ahead of traffic (`utils.aws` keeps them).

    The stores then make their clients in about 2 ms instead of the 50-80 ms of the first.
    """
    aws.client("dynamodb")


def renew_clients() -> None:
    """Have every store make its client afresh on next use (after a SnapStart restore)."""
    global _generation
    _generation += 1


class DynamoDBTable:
    """Base of the stores kept in the one DynamoDB table (`pk`, `sk`, TTL `expiration`)."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = table_name
        self._given = client
        self._client: Any = None
        self._made_in = _generation

    @property
    def table_name(self) -> str:
        """The table the store keeps its items in."""
        return self._table

    @property
    def client(self) -> Any:
        """The client given, or one made on first use (botocore loads only on this path)."""
        if self._given is not None:
            return self._given
        if self._client is None or self._made_in != _generation:
            with _making:
                if self._client is None or self._made_in != _generation:
                    self._client = dynamodb_client()
                    self._made_in = _generation
        return self._client

    def pages(self, **query: Any) -> Iterator[dict[str, Any]]:
        """A Query's answer, page after page (each up to 1 MB) until the last."""
        while True:
            page: dict[str, Any] = self.client.query(TableName=self._table, **query)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def write_batches(self, requests: list[dict[str, Any]]) -> None:
        """Puts and deletes by BatchWriteItem, 25 a call, resending what DynamoDB left over."""
        for start in range(0, len(requests), BATCH):
            pending = {self._table: requests[start : start + BATCH]}
            while pending:
                answer = self.client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}


CAS_ATTEMPTS = 20  # a write guarded by a version is tried this often before it gives up


def dynamodb_client() -> Any:
    """A DynamoDB client as the stores use it: the process's session, bounded retries."""
    from llm_server.stores.faults import client_config

    return aws.client("dynamodb", config=client_config())


def lost_race(attempt: int) -> None:
    """Pause after another writer won a version-guarded write (`attempt`: 0 after the first).

    Full jitter, its bound doubling from 5 ms up to 100 ms: with a fixed 20 ms, 40 writers of one
    item kept colliding, and the unluckiest lost all `CAS_ATTEMPTS` (1.7 s at most in all).
    """
    time.sleep(random.uniform(0, min(0.1, 0.005 * 2**attempt)))


def refused(exc: Exception, code: str = "ConditionalCheckFailedException") -> bool:
    """Whether a boto3 error is DynamoDB refusing a write by its condition (or transaction)."""
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == code
