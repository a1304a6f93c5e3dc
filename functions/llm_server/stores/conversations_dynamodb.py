"""Conversations in the DynamoDB table: a head item and one item per conversation item.

Partition `conversation#<owner>#<id>`. The head (`sk = head`) holds the metadata, when it was
made, the live range of sequence numbers `[first, next)`, its byte total and a version; items
are `sk = item#<seq>`. An append writes its items and the new head in one transaction, guarded
by the head's version (a racing writer reads again and retries, so no item is lost); pruning
moves `first` in that same transaction and deletes the items that left just after (their TTL
removes any an interrupted delete leaves). An owner's conversations are counted in its ledger
item (`owner_ledger.py`). Items of one conversation are few enough (CONVERSATION_MAX_ITEMS) to be
read in order by a query of its range.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from llm_server.exceptions import StoreUnavailableException
from llm_server.stores.conversations import Conversation, ConversationLimits, Item, ItemPage
from llm_server.stores.dynamodb import CAS_ATTEMPTS, DynamoDBTable, lost_race, refused
from llm_server.stores.expiry import Clock, expires_at, is_expired
from llm_server.stores.owner_ledger import DynamoDBOwnerLedger, OwnerLimits

HEAD = {"S": "head"}
TRANSACTION_ITEMS = 99  # with the head, DynamoDB's 100 a transaction


@dataclass(frozen=True)
class _Head:
    """A conversation's head as read: what it is, its live range, its bytes, its version."""

    conversation: Conversation
    first: int
    next: int
    bytes: int
    version: int


class DynamoDBConversationStore(DynamoDBTable):
    """Bounded conversations, owned by their caller, in the shared table."""

    def __init__(
        self,
        table_name: str,
        limits: ConversationLimits,
        client: Any = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(table_name, client)
        self._limits = limits
        self._clock = clock
        bound = OwnerLimits(limits.max_conversations)
        self._ledger = DynamoDBOwnerLedger(self, "conversations", bound, limits.ttl_seconds)

    def create(self, owner: str, conversation: Conversation, items: list[Item]) -> None:
        """Write the head, then the items; erase the owner's oldest past the bound."""
        now = self._clock()
        start = int(now * 1_000_000)  # a new range, past any items a deleted namesake left
        head = _Head(conversation, start, start, 0, 0)
        self._write(owner, head, items[:TRANSACTION_ITEMS], now)
        if items[TRANSACTION_ITEMS:]:
            self.append(owner, conversation.id, items[TRANSACTION_ITEMS:])
        for old in self._ledger.record(owner, conversation.id, 0, now):
            self._erase(owner, old)

    def get(self, owner: str, conversation_id: str) -> Conversation | None:
        """The live conversation."""
        head = self._head(owner, conversation_id, self._clock())
        return head.conversation if head else None

    def set_metadata(
        self, owner: str, conversation_id: str, metadata: dict[str, str]
    ) -> Conversation | None:
        """Rewrite the head with the new metadata, under its version."""
        for attempt in range(CAS_ATTEMPTS):
            now = self._clock()
            head = self._head(owner, conversation_id, now)
            if head is None:
                return None
            changed = replace(head, conversation=replace(head.conversation, metadata=metadata))
            if self._written(owner, changed, [], now, attempt):
                return changed.conversation
        raise _busy()

    def delete(self, owner: str, conversation_id: str) -> bool:
        """Erase the head and the items; take it off the owner's ledger."""
        now = self._clock()
        found = self._head(owner, conversation_id, now) is not None
        self._erase(owner, conversation_id)
        self._ledger.forget(owner, conversation_id, now)
        return found

    def append(self, owner: str, conversation_id: str, items: list[Item]) -> bool:
        """Write items and the pruned head in transactions of at most 99 items each."""
        for start in range(0, len(items), TRANSACTION_ITEMS):
            if not self._append(owner, conversation_id, items[start : start + TRANSACTION_ITEMS]):
                return False
        return True

    def page(
        self, owner: str, conversation_id: str, limit: int, after: str | None, newest_first: bool
    ) -> ItemPage | None:
        """The items of the live range in the order asked, after the item `after`."""
        head = self._head(owner, conversation_id, self._clock())
        if head is None:
            return None
        found = list(self._items(owner, head, newest_first=newest_first))
        if after is not None:
            ids = [item.id for item in found]
            found = found[ids.index(after) + 1 :] if after in ids else []
        return ItemPage(found[:limit], len(found) > limit)

    def item(self, owner: str, conversation_id: str, item_id: str) -> Item | None:
        """The item, if its conversation is live and holds it."""
        head = self._head(owner, conversation_id, self._clock())
        if head is None:
            return None
        return next((i for i in self._items(owner, head) if i.id == item_id), None)

    def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool:
        """Delete the item's own record (the range's byte total counts it until pruning)."""
        head = self._head(owner, conversation_id, self._clock())
        if head is None:
            return False
        pk = _pk(owner, conversation_id)
        for sk, item in self._records(pk, head):
            if item.id == item_id:
                key = {"pk": {"S": pk}, "sk": {"S": sk}}
                self.client.delete_item(TableName=self._table, Key=key)
                return True
        return False

    def _append(self, owner: str, conversation_id: str, items: list[Item]) -> bool:
        for attempt in range(CAS_ATTEMPTS):
            now = self._clock()
            head = self._head(owner, conversation_id, now)
            if head is None:
                return False
            if self._written(owner, head, items, now, attempt):
                return True
        raise _busy()

    def _written(
        self, owner: str, head: _Head, items: list[Item], now: float, attempt: int
    ) -> bool:
        """Write the items and the head (pruned); False when another writer won the race."""
        from botocore.exceptions import ClientError

        try:
            self._write(owner, head, items, now)
        except ClientError as exc:
            if not refused(exc, "TransactionCanceledException"):
                raise
            lost_race(attempt)
            return False
        return True

    def _write(self, owner: str, head: _Head, items: list[Item], now: float) -> None:
        pk = {"S": _pk(owner, head.conversation.id)}
        expiration = {"N": str(expires_at(self._limits.ttl_seconds, now))}
        first, total, dropped = self._pruned(pk["S"], head, items)
        puts = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "pk": pk,
                        "sk": {"S": _sk(head.next + index)},
                        "id": {"S": item.id},
                        "data": {"B": item.data},
                        "expiration": expiration,
                    },
                }
            }
            for index, item in enumerate(items)
        ]
        conversation = head.conversation
        head_item = {
            "pk": pk,
            "sk": HEAD,
            "created_at": {"N": str(conversation.created_at)},
            "metadata": {"S": json.dumps(conversation.metadata)},
            "first": {"N": str(first)},
            "next": {"N": str(head.next + len(items))},
            "bytes": {"N": str(total)},
            "version": {"N": str(head.version + 1)},
            "expiration": expiration,
        }
        guard = {
            "ConditionExpression": "attribute_not_exists(sk) OR version = :version",
            "ExpressionAttributeValues": {":version": {"N": str(head.version)}},
        }
        put_head = {"Put": {"TableName": self._table, "Item": head_item, **guard}}
        self.client.transact_write_items(TransactItems=[*puts, put_head])
        keys = [{"pk": pk, "sk": {"S": _sk(seq)}} for seq in dropped]
        self.write_batches([{"DeleteRequest": {"Key": key}} for key in keys])

    def _pruned(self, pk: str, head: _Head, items: list[Item]) -> tuple[int, int, list[int]]:
        """The range start and byte total after adding `items`, and the seqs that leave."""
        limits = self._limits
        first, count = head.first, head.next - head.first + len(items)
        total = head.bytes + sum(item.size for item in items)
        dropped: list[int] = []
        if count > limits.max_items or total > limits.max_bytes:
            for sk, item in self._records(pk, head):
                if count <= limits.max_items and total <= limits.max_bytes:
                    break
                seq = int(sk.removeprefix("item#"))
                dropped.append(seq)
                first, count, total = seq + 1, count - 1, total - item.size
        return first, total, dropped

    def _head(self, owner: str, conversation_id: str, now: float) -> _Head | None:
        key = {"pk": {"S": _pk(owner, conversation_id)}, "sk": HEAD}
        found = self.client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item = found.get("Item")
        if item is None or is_expired(item["expiration"]["N"], now):
            return None
        conversation = Conversation(
            conversation_id, int(item["created_at"]["N"]), json.loads(item["metadata"]["S"])
        )
        return _Head(
            conversation,
            int(item["first"]["N"]),
            int(item["next"]["N"]),
            int(item["bytes"]["N"]),
            int(item["version"]["N"]),
        )

    def _items(self, owner: str, head: _Head, newest_first: bool = False) -> Iterator[Item]:
        pk = _pk(owner, head.conversation.id)
        return (item for _, item in self._records(pk, head, newest_first))

    def _records(
        self, pk: str, head: _Head, newest_first: bool = False
    ) -> Iterator[tuple[str, Item]]:
        """(sort key, item) of the live range, a page of the query at a time."""
        if head.next <= head.first:
            return
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": pk},
                ":first": {"S": _sk(head.first)},
                ":last": {"S": _sk(head.next - 1)},
            },
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**query)
            for record in page.get("Items", []):
                yield record["sk"]["S"], Item(record["id"]["S"], bytes(record["data"]["B"]))
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _erase(self, owner: str, conversation_id: str) -> None:
        """Every record of the conversation, head first (it is then gone for readers)."""
        pk = _pk(owner, conversation_id)
        self.client.delete_item(TableName=self._table, Key={"pk": {"S": pk}, "sk": HEAD})
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": "pk, sk",
        }
        keys: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**query)
            keys += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        self.write_batches([{"DeleteRequest": {"Key": key}} for key in keys])


def _busy() -> StoreUnavailableException:
    return StoreUnavailableException(
        "The conversation is too busy to change now; retry shortly", retry_after=1
    )


def _pk(owner: str, conversation_id: str) -> str:
    return f"conversation#{owner}#{conversation_id}"


def _sk(seq: int) -> str:
    return f"item#{seq:020d}"
