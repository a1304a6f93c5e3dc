"""The usage ledger: per tenant, UTC month, model and key source, what was used and what it cost.

One row (one DynamoDB item) per tenant, month, model and `api_key_source`, whatever the traffic:
requests, input / cached input / cache-write / output tokens, the cost in picodollars and how
many requests had no price (their cost is unknown). Rows expire `USAGE_RETENTION_DAYS` after
their last write. SQLite here; DynamoDB in `usage_dynamodb.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from typing import Protocol

from llm_server.stores.expiry import expires_at
from llm_server.stores.sqlite import SQLiteFile


@dataclass(frozen=True)
class UsageRow:
    """What one tenant's turns on one model and key source used in one month (or one turn)."""

    model: str
    provider: str
    api_key_source: str
    requests: int = 1
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cost_pico: int = 0
    unpriced: int = 0
    """Requests of this row whose model had no price: the row's cost is then unknown."""

    def plus(self, other: UsageRow) -> UsageRow:
        """The sum of two rows of one model and source."""
        return replace(
            self, **{name: getattr(self, name) + getattr(other, name) for name in COUNTERS}
        )


COUNTERS = tuple(f.name for f in fields(UsageRow) if f.type == "int")
Entries = dict[tuple[str, str], list[UsageRow]]
"""Rows to add, by (owner, month)."""

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS usage_ledger (owner TEXT NOT NULL, month TEXT NOT NULL, "
    "model TEXT NOT NULL, api_key_source TEXT NOT NULL, provider TEXT NOT NULL, "
    + ", ".join(f"{name} INTEGER NOT NULL" for name in COUNTERS)
    + ", expiration INTEGER NOT NULL, PRIMARY KEY (owner, month, model, api_key_source))",
)


class UsageStore(Protocol):
    """Adds turns to the ledger and reads it back."""

    def add(self, entries: Entries, ttl: int) -> None:
        """Add turns' usage to their rows, each atomically (counters only ever grow)."""
        ...

    def month(self, owner: str, month: str) -> list[UsageRow]:
        """One tenant's rows of a month (`YYYY-MM`)."""
        ...

    def tenants(self, month: str) -> dict[str, list[UsageRow]]:
        """Every tenant's rows of a month: for the operator's report, not for requests."""
        ...

    def days(self, owner: str, first: str, last: str) -> dict[str, list[UsageRow]]:
        """One tenant's rows of each day (`YYYY-MM-DD`) from `first` to `last`, by day."""
        ...


class SQLiteUsageStore:
    """The ledger in the local SQLite file: one upsert per turn."""

    def __init__(self, path: str) -> None:
        self._file = SQLiteFile(path, SCHEMA)
        self._connect = self._file.connect

    def add(self, entries: Entries, ttl: int) -> None:
        """One transaction of `INSERT ... ON CONFLICT DO UPDATE`s adding each counter."""
        names = ", ".join(COUNTERS)
        marks = ", ".join("?" for _ in COUNTERS)
        sums = ", ".join(f"{name} = {name} + excluded.{name}" for name in COUNTERS)
        expiration = expires_at(ttl, time.time())
        values = [
            (
                owner,
                month,
                row.model,
                row.api_key_source,
                row.provider,
                *(getattr(row, name) for name in COUNTERS),
                expiration,
            )
            for (owner, month), rows in entries.items()
            for row in rows
        ]
        with self._file.writer() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                f"INSERT INTO usage_ledger (owner, month, model, api_key_source, provider, "
                f"{names}, expiration) VALUES (?, ?, ?, ?, ?, {marks}, ?) "
                "ON CONFLICT (owner, month, model, api_key_source) DO UPDATE SET "
                f"{sums}, provider = excluded.provider, expiration = excluded.expiration",
                values,
            )
            connection.execute("COMMIT")

    def month(self, owner: str, month: str) -> list[UsageRow]:
        """The tenant's live rows of the month, by model."""
        return self._rows("owner = ? AND month = ?", (owner, month)).get(owner, [])

    def tenants(self, month: str) -> dict[str, list[UsageRow]]:
        """All tenants' live rows of the month."""
        return self._rows("month = ?", (month,))

    def days(self, owner: str, first: str, last: str) -> dict[str, list[UsageRow]]:
        """The tenant's live day rows in the range (a month's period is shorter: left out)."""
        where = "owner = ? AND month BETWEEN ? AND ? AND length(month) = 10"
        return self._rows(where, (owner, first, last), by="month")

    def _rows(
        self, where: str, args: tuple[str, ...], by: str = "owner"
    ) -> dict[str, list[UsageRow]]:
        """Live rows matching `where`, grouped by `by` (the owner, or the period)."""
        names = ", ".join(COUNTERS)
        with self._connect() as connection:
            found = connection.execute(
                f"SELECT {by}, model, provider, api_key_source, {names} FROM usage_ledger "
                f"WHERE {where} AND expiration > ? ORDER BY model, api_key_source",
                (*args, time.time()),
            ).fetchall()
        rows: dict[str, list[UsageRow]] = {}
        for group, model, provider, source, *counts in found:
            rows.setdefault(group, []).append(UsageRow(model, provider, source, *counts))
        return rows
