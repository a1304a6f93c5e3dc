"""Sessions in the DynamoDB table: one item per turn plus one head item per session.

Partition `session#<owner>#<session id>` (owner ids never contain `#`). The head (`sk = head`)
holds the session's live range of sequence numbers, `[first, next)`, and its byte total; turns
are `sk = turn#<seq>`. An append writes the turn and the new head in one transaction, guarded by
the head's version: if two requests race, one retries, and neither turn is lost. Pruning moves
`first` in that same transaction, so older turns leave the session atomically; their items are
deleted just after (and expire by TTL if that delete is interrupted). Readers read only the
head's range.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llm_server.exceptions import ChatServiceException
from llm_server.stores.dynamodb import CAS_ATTEMPTS, DynamoDBTable, lost_race, refused
from llm_server.stores.expiry import Clock, expires_at, is_expired
from llm_server.stores.owner_ledger import DynamoDBOwnerLedger, OwnerLimits
from llm_server.stores.sessions import SessionLimits, SessionPage, StoredTurn

HEAD = {"S": "head"}


@dataclass(frozen=True)
class _Head:
    """A session's live range `[first, next)`, its bytes, and the version guarding it."""

    first: int
    next: int
    bytes: int
    version: int

    @classmethod
    def of(cls, item: dict[str, Any] | None, now: float) -> _Head:
        """The head as stored at `now`; a missing or expired one starts a new range past the old.

        Sequence numbers start at the current microsecond, so a new range never meets items of
        an erased or expired session that are not deleted yet.
        """
        version = int(item["version"]["N"]) if item else 0
        old_next = int(item["next"]["N"]) if item else 0
        if item is None or is_expired(item["expiration"]["N"], now):
            start = max(old_next, int(now * 1_000_000))
            return cls(start, start, 0, version)
        return cls(int(item["first"]["N"]), old_next, int(item["bytes"]["N"]), version)


class DynamoDBSessionStore(DynamoDBTable):
    """Bounded sessions, owned by their caller, in the shared table."""

    def __init__(
        self, table_name: str, limits: SessionLimits, client: Any = None, clock: Clock = time.time
    ) -> None:
        super().__init__(table_name, client)
        self._limits = limits
        self._clock = clock
        bound = OwnerLimits(limits.max_sessions)
        self._ledger = DynamoDBOwnerLedger(self, "sessions", bound, limits.ttl_seconds)

    def append(self, owner: str, session_id: str, turn: StoredTurn) -> None:
        """Write the turn and the pruned head in one transaction; retry if another won a race."""
        from botocore.exceptions import ClientError

        pk = {"S": _pk(owner, session_id)}
        for attempt in range(CAS_ATTEMPTS):
            now = self._clock()
            head = _Head.of(self._head(pk), now)
            first, total, dropped = self._prune(pk, head, turn.size)
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {"Put": self._turn_put(pk, head.next, turn, now)},
                        {"Put": self._head_put(pk, head, first, total, now)},
                    ]
                )
            except ClientError as exc:
                if not refused(exc, "TransactionCanceledException"):
                    raise
                lost_race(attempt)  # another append won: read the head again
                continue
            self._delete_items(pk, dropped)
            if head.first == head.next:  # the session's first turn: count it for its owner
                for old in self._ledger.record(owner, session_id, 0, now):
                    self._erase(owner, old, now)  # the ledger has forgotten it already
            return
        raise ChatServiceException("The session is too busy to store the turn")

    def recent(self, owner: str, session_id: str, limit: int) -> list[StoredTurn]:
        """The newest unexpired turns of the live range, oldest first."""
        pk, now = {"S": _pk(owner, session_id)}, self._clock()
        head = self._live_head(pk, now)
        if head is None:
            return []
        items = self._turns(pk, head.first, head.next, newest_first=True, limit=limit)
        turns = [_turn(item) for item in items if not is_expired(item["expiration"]["N"], now)]
        return list(reversed(turns[:limit]))

    def page(self, owner: str, session_id: str, limit: int, after: int | None) -> SessionPage:
        """One query of at most `limit` turns after `after`, oldest first."""
        pk, now = {"S": _pk(owner, session_id)}, self._clock()
        head = self._live_head(pk, now)
        if head is None:
            return SessionPage([], None)
        start = head.first if after is None else max(head.first, after + 1)
        query = self._range_query(pk, start, head.next, newest_first=False)
        result = self.client.query(**query, Limit=limit)
        items = result.get("Items", [])
        last = _seq(items[-1]) if items else None
        more = "LastEvaluatedKey" in result and last is not None and last < head.next - 1
        turns = [_turn(item) for item in items if not is_expired(item["expiration"]["N"], now)]
        return SessionPage(turns, last if more else None)

    def delete(self, owner: str, session_id: str) -> int:
        """Erase the session and take it off its owner's ledger."""
        now = self._clock()
        erased = self._erase(owner, session_id, now)
        self._ledger.forget(owner, session_id, now)
        return erased

    def _erase(self, owner: str, session_id: str, now: float) -> int:
        """Drop the head (the session is empty from then on), then every turn item."""
        pk = {"S": _pk(owner, session_id)}
        head = self._live_head(pk, now)
        self.client.delete_item(TableName=self._table, Key={"pk": pk, "sk": HEAD})
        seqs = [_seq(item) for item in self._turns(pk, 0, 10**20, keys_only=True)]
        self._delete_items(pk, seqs)
        return 0 if head is None else sum(head.first <= seq < head.next for seq in seqs)

    def _prune(self, pk: dict[str, str], head: _Head, size: int) -> tuple[int, int, list[int]]:
        """The range start and byte total after adding a turn, and the turns that leave."""
        limits = self._limits
        first, total, dropped = head.first, head.bytes + size, []

        def over() -> bool:
            return head.next - first + 1 > limits.max_turns or total > limits.max_bytes

        if over():
            for item in self._turns(pk, head.first, head.next, sizes_only=True):
                if not over():
                    break
                dropped.append(_seq(item))
                total -= int(item["size"]["N"])
                first = dropped[-1] + 1
        if over():  # everything older is gone: the new turn alone stays
            first, total = head.next, size
        return first, total, dropped

    def _head(self, pk: dict[str, str]) -> dict[str, Any] | None:
        key = {"pk": pk, "sk": HEAD}
        return self.client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")

    def _live_head(self, pk: dict[str, str], now: float) -> _Head | None:
        item = self._head(pk)
        if item is None or is_expired(item["expiration"]["N"], now):
            return None
        return _Head.of(item, now)

    def _turn_put(
        self, pk: dict[str, str], seq: int, turn: StoredTurn, now: float
    ) -> dict[str, Any]:
        item = {
            "pk": pk,
            "sk": {"S": _sk(seq)},
            "expiration": {"N": str(expires_at(self._limits.ttl_seconds, now))},
            "size": {"N": str(turn.size)},
            "user": {"S": turn.user},
            "assistant": {"S": turn.assistant},
            "model": {"S": turn.model},
            "input_tokens": {"N": str(turn.input_tokens)},
            "output_tokens": {"N": str(turn.output_tokens)},
            "created_at": {"S": turn.created_at},
        }
        return {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(sk)",
        }

    def _head_put(
        self, pk: dict[str, str], head: _Head, first: int, total: int, now: float
    ) -> dict[str, Any]:
        item = {
            "pk": pk,
            "sk": HEAD,
            "first": {"N": str(first)},
            "next": {"N": str(head.next + 1)},
            "bytes": {"N": str(total)},
            "version": {"N": str(head.version + 1)},
            "expiration": {"N": str(expires_at(self._limits.ttl_seconds, now))},
        }
        return {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(sk) OR version = :version",
            "ExpressionAttributeValues": {":version": {"N": str(head.version)}},
        }

    def _delete_items(self, pk: dict[str, str], seqs: list[int]) -> None:
        """Delete turn items (best effort: their TTL removes any left behind)."""
        keys = [{"pk": pk, "sk": {"S": _sk(seq)}} for seq in seqs]
        self.write_batches([{"DeleteRequest": {"Key": key}} for key in keys])

    def _range_query(
        self, pk: dict[str, str], first: int, end: int, newest_first: bool
    ) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": pk,
                ":first": {"S": _sk(first)},
                ":last": {"S": _sk(max(first, end - 1))},
            },
            "ScanIndexForward": not newest_first,
        }

    def _turns(
        self,
        pk: dict[str, str],
        first: int,
        end: int,
        *,
        newest_first: bool = False,
        limit: int | None = None,
        keys_only: bool = False,
        sizes_only: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """The turn items with `first <= seq < end`, a page of the query at a time."""
        if end <= first:
            return
        query = self._range_query(pk, first, end, newest_first)
        if limit is not None:
            query["Limit"] = limit
        if keys_only or sizes_only:
            query["ProjectionExpression"] = "sk, #size" if sizes_only else "sk"
            if sizes_only:
                query["ExpressionAttributeNames"] = {"#size": "size"}
        while True:
            page = self.client.query(**query)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page or limit is not None:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _pk(owner: str, session_id: str) -> str:
    return f"session#{owner}#{session_id}"


def _sk(seq: int) -> str:
    return f"turn#{seq:020d}"


def _seq(item: dict[str, Any]) -> int:
    return int(item["sk"]["S"].removeprefix("turn#"))


def _turn(item: dict[str, Any]) -> StoredTurn:
    return StoredTurn(
        user=item["user"]["S"],
        assistant=item["assistant"]["S"],
        model=item["model"]["S"],
        input_tokens=int(item["input_tokens"]["N"]),
        output_tokens=int(item["output_tokens"]["N"]),
        created_at=item["created_at"]["S"],
    )
