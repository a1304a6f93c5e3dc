"""Idempotent retries through Powertools' idempotency utility.

On AWS its own DynamoDB persistence layer, on the shared table (`pk` = `idempotency#llm-server`,
`sk` = the hashed key). Locally an SQLite persistence layer implementing the same four methods,
with the same rule: an existing record blocks a new one until it has expired, or, while in
progress, until its in-progress deadline has passed (a crashed or timed-out first attempt).
"""

from __future__ import annotations

import datetime as dt

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from llm_server.stores.sqlite import SQLiteFile

IDEMPOTENCY_PK = "idempotency#llm-server"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, status TEXT, "
    "expiration INTEGER, in_progress_expiration INTEGER, data TEXT, validation TEXT)",
)


class SQLitePersistenceLayer(BasePersistenceLayer):
    """Powertools idempotency records in a local SQLite file."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._connect = SQLiteFile(path, SCHEMA).connect

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT key, status, expiration, in_progress_expiration, data, validation "
                "FROM idempotency WHERE key = ?",
                (idempotency_key,),
            ).fetchone()
        if row is None:
            raise IdempotencyItemNotFoundError
        return DataRecord(*row)

    def _put_record(self, data_record: DataRecord) -> None:
        now = dt.datetime.now()
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")  # one writer decides, across processes
            row = connection.execute(
                "SELECT status, expiration, in_progress_expiration FROM idempotency WHERE key = ?",
                (data_record.idempotency_key,),
            ).fetchone()
            if row is not None and not _replaceable(row, now):
                connection.execute("ROLLBACK")
                raise IdempotencyItemAlreadyExistsError
            connection.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                (
                    data_record.idempotency_key,
                    data_record.status,
                    data_record.expiry_timestamp,
                    data_record.in_progress_expiry_timestamp,
                    data_record.response_data,
                    data_record.payload_hash,
                ),
            )
            connection.execute("COMMIT")

    def _update_record(self, data_record: DataRecord) -> None:
        with self._connect() as connection:
            connection.execute(
                "UPDATE idempotency SET status = ?, expiration = ?, data = ?, validation = ? "
                "WHERE key = ?",
                (
                    data_record.status,
                    data_record.expiry_timestamp,
                    data_record.response_data,
                    data_record.payload_hash,
                    data_record.idempotency_key,
                ),
            )

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._connect() as connection:
            connection.execute(
                "DELETE FROM idempotency WHERE key = ?", (data_record.idempotency_key,)
            )


def _replaceable(row: tuple, now: dt.datetime) -> bool:
    status, expiration, in_progress_expiration = row
    if expiration is not None and expiration < int(now.timestamp()):
        return True
    return (
        status == "INPROGRESS"
        and in_progress_expiration is not None
        and in_progress_expiration < int(now.timestamp() * 1000)
    )
