"""Stored responses in the DynamoDB table, split in parts: an item holds at most 400 KB.

Partition `response#<owner>#<id>`, items `sk = part#<n>` each holding up to `PART_BYTES` of the
record and the number of parts, so a reader never takes a record with a part missing for whole.
A record is written once (ids are new), read in one query, and expires by TTL.
"""

from __future__ import annotations

import time
from typing import Any

from llm_server.stores.dynamodb import DynamoDBTable
from llm_server.stores.expiry import expires_at, is_expired
from llm_server.stores.owner_ledger import DynamoDBOwnerLedger, OwnerLimits
from llm_server.stores.responses import DEFAULT_LIMITS

PART_BYTES = 350_000


class DynamoDBResponseStore(DynamoDBTable):
    """Stored responses, owned by their caller, in the shared table."""

    def __init__(
        self,
        table_name: str,
        ttl_seconds: int,
        client: Any = None,
        limits: OwnerLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(table_name, client)
        self._ttl = ttl_seconds
        self._ledger = DynamoDBOwnerLedger(self, "responses", limits, ttl_seconds)

    def put(self, owner: str, response_id: str, record: bytes) -> None:
        """Write the record's parts, then erase the owner's oldest records past the bounds."""
        parts = [record[i : i + PART_BYTES] for i in range(0, len(record), PART_BYTES)] or [b""]
        expiration = {"N": str(expires_at(self._ttl, time.time()))}
        items = [
            {
                "pk": {"S": _pk(owner, response_id)},
                "sk": {"S": f"part#{index:04d}"},
                "parts": {"N": str(len(parts))},
                "data": {"B": part},
                "expiration": expiration,
            }
            for index, part in enumerate(parts)
        ]
        self.write_batches([{"PutRequest": {"Item": item}} for item in items])
        for old in self._ledger.record(owner, response_id, len(record), time.time()):
            self._erase(owner, old)

    def get(self, owner: str, response_id: str) -> bytes | None:
        """The record, unless absent, expired or incomplete."""
        items = self._items(owner, response_id)
        if not items or is_expired(items[0]["expiration"]["N"], time.time()):
            return None
        if len(items) != int(items[0]["parts"]["N"]):
            return None
        return b"".join(item["data"]["B"] for item in items)

    def delete(self, owner: str, response_id: str) -> bool:
        """Delete every part; whether there was an unexpired record."""
        items = self._erase(owner, response_id)
        if items:
            self._ledger.forget(owner, response_id, time.time())
        return bool(items) and not is_expired(items[0]["expiration"]["N"], time.time())

    def _erase(self, owner: str, response_id: str) -> list[dict[str, Any]]:
        items = self._items(owner, response_id)
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in items]
        self.write_batches([{"DeleteRequest": {"Key": key}} for key in keys])
        return items

    def _items(self, owner: str, response_id: str) -> list[dict[str, Any]]:
        pages = self.pages(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": _pk(owner, response_id)}},
            ConsistentRead=True,
        )
        return [item for page in pages for item in page.get("Items", [])]


def _pk(owner: str, response_id: str) -> str:
    return f"response#{owner}#{response_id}"
