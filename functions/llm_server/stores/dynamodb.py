"""What the DynamoDB stores share: the table's name and a client made on first use."""

from __future__ import annotations

from typing import Any

BATCH = 25  # the most items one BatchWriteItem takes


class DynamoDBTable:
    """Base of the stores kept in the one DynamoDB table (`pk`, `sk`, TTL `expiration`)."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = table_name
        self._client = client

    @property
    def client(self) -> Any:
        """The DynamoDB client, created on first use (boto3 loads only on this path)."""
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def write_batches(self, requests: list[dict[str, Any]]) -> None:
        """Puts and deletes by BatchWriteItem, 25 a call, resending what DynamoDB left over."""
        for start in range(0, len(requests), BATCH):
            pending = {self._table: requests[start : start + BATCH]}
            while pending:
                answer = self.client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}


def refused(exc: Exception, code: str = "ConditionalCheckFailedException") -> bool:
    """Whether a boto3 error is DynamoDB refusing a write by its condition (or transaction)."""
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == code
