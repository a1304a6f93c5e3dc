"""The usage ledger in the shared DynamoDB table.

Items `pk = usage#<owner>`, `sk = <month>#<source>#<model>`.

One item per tenant, month, key source and model; each turn is one `UpdateItem ADD` (atomic
across containers, no read first). A tenant's month is one Query; the operator's report of all
tenants is a Scan, run with the operator's credentials (the functions' role has no Scan).
"""

from __future__ import annotations

import time
from typing import Any

from llm_server.stores.dynamodb import DynamoDBTable
from llm_server.stores.expiry import expires_at
from llm_server.stores.usage import COUNTERS, Entries, UsageRow

PREFIX = "usage#"


class DynamoDBUsageStore(DynamoDBTable):
    """The ledger's rows as items of the one table."""

    def add(self, entries: Entries, ttl: int) -> None:
        """Per row, one UpdateItem: ADD each counter, SET what names it (and its new expiry)."""
        for (owner, month), rows in entries.items():
            for row in rows:
                self._add(owner, month, row, ttl)

    def _add(self, owner: str, month: str, row: UsageRow, ttl: int) -> None:
        values: dict[str, Any] = {f":{name}": {"N": str(getattr(row, name))} for name in COUNTERS}
        values.update(
            {
                ":model": {"S": row.model},
                ":provider": {"S": row.provider},
                ":source": {"S": row.api_key_source},
                ":month": {"S": month},
                ":expiration": {"N": str(expires_at(ttl, time.time()))},
            }
        )
        self.client.update_item(
            TableName=self.table_name,
            Key=_key(owner, month, row.api_key_source, row.model),
            UpdateExpression="ADD "
            + ", ".join(f"{name} :{name}" for name in COUNTERS)
            + " SET model = :model, provider = :provider, api_key_source = :source, "
            "#month = :month, expiration = :expiration",
            ExpressionAttributeNames={"#month": "month"},
            ExpressionAttributeValues=values,
        )

    def month(self, owner: str, month: str) -> list[UsageRow]:
        """One Query of the tenant's items of the month (a tenant has a few dozen at most)."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :month)",
            ExpressionAttributeValues={":pk": {"S": PREFIX + owner}, ":month": {"S": month + "#"}},
        )
        return [_row(item) for page in pages for item in page["Items"] if _live(item)]

    def tenants(self, month: str) -> dict[str, list[UsageRow]]:
        """A Scan of the month's items of every tenant (operator's credentials)."""
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="begins_with(pk, :prefix) AND begins_with(sk, :month)",
            ExpressionAttributeValues={":prefix": {"S": PREFIX}, ":month": {"S": month + "#"}},
        )
        rows: dict[str, list[UsageRow]] = {}
        for page in pages:
            for item in page["Items"]:
                if _live(item):
                    rows.setdefault(item["pk"]["S"][len(PREFIX) :], []).append(_row(item))
        return rows

    def days(self, owner: str, first: str, last: str) -> dict[str, list[UsageRow]]:
        """One Query of the tenant's items between the days.

        Its months' rows sort among them: their period is shorter, and they are left out.
        """
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": {"S": PREFIX + owner},
                ":first": {"S": first + "#"},
                ":last": {"S": last + "#~"},
            },
        )
        rows: dict[str, list[UsageRow]] = {}
        for page in pages:
            for item in page["Items"]:
                day = item["sk"]["S"].split("#", 1)[0]
                if len(day) == len(first) and _live(item):
                    rows.setdefault(day, []).append(_row(item))
        return rows


def _key(owner: str, month: str, source: str, model: str) -> dict[str, Any]:
    return {"pk": {"S": PREFIX + owner}, "sk": {"S": f"{month}#{source}#{model}"}}


def _row(item: dict[str, Any]) -> UsageRow:
    counts = {name: int(item.get(name, {}).get("N", "0")) for name in COUNTERS}
    return UsageRow(
        item["model"]["S"], item["provider"]["S"], item["api_key_source"]["S"], **counts
    )


def _live(item: dict[str, Any]) -> bool:
    return int(item.get("expiration", {}).get("N", "0")) > time.time()
