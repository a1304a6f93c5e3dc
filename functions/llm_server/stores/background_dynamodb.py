"""Background runs in the DynamoDB table (`background.py` says what a run is).

Partition `background-runs#<owner>`: one item per run (`sk = run#<id>`: status, error, cancel flag,
deadline), so an owner's unfinished runs are one query. Partition `background#<owner>#<id>`: the
run's job (`job#<n>`) and its event chunks (`ev#<first>#<n>`), split in parts as an item holds
at most 400 KB; a reader takes a job or chunk only with all its parts. Status changes are
conditional on the run being unfinished. Items expire by TTL.
"""

from __future__ import annotations

import json
import time
from typing import Any

from llm_server.stores.background import (
    CHUNK_FRAMES,
    UNFINISHED,
    BackgroundRun,
    pack,
    unpack,
)
from llm_server.stores.dynamodb import DynamoDBTable
from llm_server.stores.expiry import expires_at, is_expired

PART_BYTES = 350_000
_UNFINISHED = {":queued": {"S": UNFINISHED[0]}, ":running": {"S": UNFINISHED[1]}}
_IS_UNFINISHED = "attribute_exists(pk) AND #status IN (:queued, :running)"


class DynamoDBBackgroundStore(DynamoDBTable):
    """Background runs, owned by their caller, in the shared table."""

    def __init__(self, table_name: str, ttl_seconds: int, client: Any = None) -> None:
        super().__init__(table_name, client)
        self._ttl = ttl_seconds

    def create(self, owner: str, response_id: str, job: bytes, deadline: float) -> None:
        """Write the job's parts, then the run (so a run is never seen without its job)."""
        self._put_parts(_pk(owner, response_id), "job#", job)
        self.client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": _runs(owner)},
                "sk": {"S": f"run#{response_id}"},
                "status": {"S": "queued"},
                "cancel": {"BOOL": False},
                "deadline": {"N": repr(deadline)},
                "expiration": self._expiration(),
            },
        )

    def get(self, owner: str, response_id: str) -> BackgroundRun | None:
        """The run's state, unless absent or expired."""
        item = self.client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _runs(owner)}, "sk": {"S": f"run#{response_id}"}},
            ConsistentRead=True,
        ).get("Item")
        if item is None or is_expired(item["expiration"]["N"], time.time()):
            return None
        error = item.get("error", {}).get("S")
        return BackgroundRun(
            item["status"]["S"],
            json.loads(error) if error else None,
            item["cancel"]["BOOL"],
            float(item["deadline"]["N"]),
        )

    def job(self, owner: str, response_id: str) -> bytes | None:
        """The run's job, whole."""
        return self._whole(self._query(_pk(owner, response_id), "job#"))

    def move(
        self,
        owner: str,
        response_id: str,
        status: str,
        error: dict[str, str] | None = None,
        only_from: tuple[str, ...] = UNFINISHED,
    ) -> bool:
        """Set the status of a run in one of `only_from`."""
        froms = {f":from{index}": {"S": name} for index, name in enumerate(only_from)}
        condition = f"attribute_exists(pk) AND #status IN ({', '.join(froms)})"
        values: dict[str, Any] = {":status": {"S": status}, **froms}
        update, names = "SET #status = :status", {}
        if error is not None:
            values[":error"] = {"S": json.dumps(error)}
            update, names = update + ", #error = :error", {"#error": "error"}
        return self._update(owner, response_id, update, values, names, condition)

    def cancel(self, owner: str, response_id: str) -> bool:
        """Flag an unfinished run."""
        values = {":yes": {"BOOL": True}, **_UNFINISHED}
        return self._update(owner, response_id, "SET cancel = :yes", values, {}, _IS_UNFINISHED)

    def unfinished(self, owner: str, alive_after: float) -> int:
        """The owner's queued and running runs that may still have a worker (one query)."""
        pages = self.pages(
            KeyConditionExpression="pk = :pk",
            FilterExpression="#status IN (:queued, :running) AND expiration > :now "
            "AND deadline > :alive",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pk": {"S": _runs(owner)},
                ":now": {"N": str(int(time.time()))},
                ":alive": {"N": repr(alive_after)},
                **_UNFINISHED,
            },
            Select="COUNT",
        )
        return sum(page["Count"] for page in pages)

    def append(self, owner: str, response_id: str, first: int, frames: list[str]) -> None:
        """One chunk of events, in as many parts as it needs."""
        last = first + len(frames) - 1
        extra = {"last": {"N": str(last)}}
        self._put_parts(_pk(owner, response_id), f"ev#{first:09d}#", pack(frames), extra)

    def events(self, owner: str, response_id: str, after: int) -> list[str]:
        """The events after `after`, up to the first chunk not yet whole.

        Read from the chunk that may hold `after + 1` on, not from the first: a reader polling
        a long run reads what is new, not the whole run each time.
        """
        start = f"ev#{max(0, after + 1 - CHUNK_FRAMES):09d}"
        items = self._query(_pk(owner, response_id), "ev#", start)
        chunks: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            chunks.setdefault(item["sk"]["S"].rsplit("#", 1)[0], []).append(item)
        found: list[str] = []
        for key in sorted(chunks):
            parts = chunks[key]
            if int(parts[0]["last"]["N"]) <= after:
                continue
            data = self._whole(parts)
            if data is None:
                break
            first = int(key.removeprefix("ev#"))
            found += unpack(data)[max(0, after + 1 - first) :]
        return found

    def _update(
        self,
        owner: str,
        response_id: str,
        update: str,
        values: dict[str, Any],
        names: dict[str, str],
        condition: str,
    ) -> bool:
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _runs(owner)}, "sk": {"S": f"run#{response_id}"}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status", **names},
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _put_parts(
        self, pk: str, prefix: str, data: bytes, extra: dict[str, Any] | None = None
    ) -> None:
        parts = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]
        expiration = self._expiration()
        items = [
            {
                "pk": {"S": pk},
                "sk": {"S": f"{prefix}{index:04d}"},
                "parts": {"N": str(len(parts))},
                "data": {"B": part},
                "expiration": expiration,
                **(extra or {}),
            }
            for index, part in enumerate(parts)
        ]
        self.write_batches([{"PutRequest": {"Item": item}} for item in items])

    def _query(self, pk: str, prefix: str, start: str | None = None) -> list[dict[str, Any]]:
        """The partition's items under `prefix` (from `start` on, when given)."""
        low, high = start or prefix, prefix + "~"  # "~" sorts after every digit and "#"
        pages = self.pages(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}},
            ConsistentRead=True,
        )
        return [item for page in pages for item in page.get("Items", [])]

    @staticmethod
    def _whole(parts: list[dict[str, Any]]) -> bytes | None:
        if not parts or is_expired(parts[0]["expiration"]["N"], time.time()):
            return None
        if len(parts) != int(parts[0]["parts"]["N"]):
            return None
        return b"".join(part["data"]["B"] for part in parts)

    def _expiration(self) -> dict[str, str]:
        return {"N": str(expires_at(self._ttl, time.time()))}


def _runs(owner: str) -> str:
    return f"background-runs#{owner}"


def _pk(owner: str, response_id: str) -> str:
    return f"background#{owner}#{response_id}"
