"""The response cache's shared tier: items `pk = cache#<hash>` of the DynamoDB table.

Warm containers each keep their own LRU; with `CACHE_SHARED=true` a miss there asks this tier,
so an answer one container paid for serves the others until its TTL.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime
from typing import Any

from llm_server.stores.dynamodb import DynamoDBTable
from llm_server.stores.expiry import expires_at, is_expired
from llm_server.values import Generation, TokenLogprob, ToolCall


class DynamoDBSharedCache(DynamoDBTable):
    """Generations by cache key, with a TTL, in the shared table."""

    def __init__(self, table_name: str, ttl_seconds: int, client: Any = None) -> None:
        super().__init__(table_name, client)
        self._ttl = ttl_seconds

    def get(self, key: str) -> Generation | None:
        """The stored generation, unless absent or expired (TTL deletion lags)."""
        item = self.client.get_item(TableName=self._table, Key=_key(key)).get("Item")
        if not item or is_expired(item["expiration"]["N"], time.time()):
            return None
        data = json.loads(item["generation"]["S"])
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["tool_calls"] = tuple(ToolCall(**call) for call in data.get("tool_calls", ()))
        data["logprobs"] = tuple(_logprob(entry) for entry in data.get("logprobs", ()))
        return Generation(**data)

    def put(self, key: str, generation: Generation) -> None:
        """Store a generation for the TTL."""
        data = {**asdict(generation), "created_at": generation.created_at.isoformat()}
        item = {
            **_key(key),
            "generation": {"S": json.dumps(data, ensure_ascii=False)},
            "expiration": {"N": str(expires_at(self._ttl, time.time()))},
        }
        self.client.put_item(TableName=self._table, Item=item)


def _logprob(entry: dict[str, Any]) -> TokenLogprob:
    top = tuple(_logprob(alternative) for alternative in entry.get("top_logprobs", ()))
    return TokenLogprob(entry["token"], entry["logprob"], tuple(entry["bytes"]), top)


def _key(key: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"cache#{key}"}, "sk": {"S": "response"}}
