"""Background responses' state: each run's job, status and streamed events, per owner.

A run is created `queued` with its job (opaque bytes: `openai_api/background.py` says what they
mean) and a deadline (epoch seconds); it moves to `in_progress`, then once to a final status,
never out of one (`move` is conditional, so a late worker cannot undo a cancel or a timeout).
`cancel` flags a run its worker polls; the events of a streamed run are appended in numbered
chunks for readers who resume. Everything expires with the stored responses (SESSION_TTL_SECONDS).
SQLite here (the embedded default), DynamoDB in `background_dynamodb.py`.
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Any, NamedTuple, Protocol

from llm_server.stores.expiry import expires_at
from llm_server.stores.sqlite import SQLiteFile

UNFINISHED = ("queued", "in_progress")
CHUNK_FRAMES = 256  # the most events a chunk holds: a reader after N starts at chunk N - 255


class BackgroundRun(NamedTuple):
    """A run's state: status, error (`{"code", "message"}` once failed), cancel flag, deadline."""

    status: str
    error: dict[str, str] | None
    cancel: bool
    deadline: float

    @property
    def finished(self) -> bool:
        """Whether its status is final."""
        return self.status not in UNFINISHED


class BackgroundStore(Protocol):
    """Where background runs live."""

    def create(self, owner: str, response_id: str, job: bytes, deadline: float) -> None:
        """A new `queued` run with its job."""
        ...

    def get(self, owner: str, response_id: str) -> BackgroundRun | None:
        """The owner's unexpired run, or None."""
        ...

    def job(self, owner: str, response_id: str) -> bytes | None:
        """The run's job, as created."""
        ...

    def move(
        self,
        owner: str,
        response_id: str,
        status: str,
        error: dict[str, str] | None = None,
        only_from: tuple[str, ...] = UNFINISHED,
    ) -> bool:
        """Set the status of a run whose status is one of `only_from` (unfinished ones).

        False if it was not (finished already, or gone): whoever moves a run owns that step.
        """
        ...

    def cancel(self, owner: str, response_id: str) -> bool:
        """Flag an unfinished run for its worker to stop; False if it had finished."""
        ...

    def unfinished(self, owner: str, alive_after: float) -> int:
        """How many of the owner's runs are queued or in progress, deadline after `alive_after`.

        One long past its deadline has no worker left: it does not count.
        """
        ...

    def append(self, owner: str, response_id: str, first: int, frames: list[str]) -> None:
        """Keep a streamed run's events numbered `first` onwards (at most CHUNK_FRAMES)."""
        ...

    def events(self, owner: str, response_id: str, after: int) -> list[str]:
        """The run's events numbered after `after`, in order."""
        ...


def pack(frames: list[str]) -> bytes:
    """A chunk of events as kept: compressed JSON (streamed text compresses well)."""
    return zlib.compress(json.dumps(frames, ensure_ascii=False).encode(), 6)


def unpack(data: bytes) -> list[str]:
    """The events `pack` kept."""
    frames: list[str] = json.loads(zlib.decompress(data))
    return frames


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS background_runs (owner TEXT NOT NULL, id TEXT NOT NULL, "
    "status TEXT NOT NULL, error TEXT, cancel INTEGER NOT NULL DEFAULT 0, deadline REAL NOT NULL, "
    "job BLOB NOT NULL, expiration INTEGER NOT NULL, PRIMARY KEY (owner, id))",
    "CREATE TABLE IF NOT EXISTS background_events (owner TEXT NOT NULL, id TEXT NOT NULL, "
    "first INTEGER NOT NULL, last INTEGER NOT NULL, frames BLOB NOT NULL, "
    "expiration INTEGER NOT NULL, PRIMARY KEY (owner, id, first))",
    "CREATE INDEX IF NOT EXISTS background_runs_by_expiration ON background_runs (expiration)",
)
_UNFINISHED = "status IN ('queued', 'in_progress')"


class SQLiteBackgroundStore:
    """Background runs in the local SQLite file; expired ones leave as runs are created."""

    def __init__(self, path: str, ttl_seconds: int) -> None:
        self._connect = SQLiteFile(path, SCHEMA).connect
        self._ttl = ttl_seconds

    def create(self, owner: str, response_id: str, job: bytes, deadline: float) -> None:
        """Insert the run and drop expired runs and events, at once."""
        now = time.time()
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT INTO background_runs VALUES (?, ?, 'queued', NULL, 0, ?, ?, ?)",
                (owner, response_id, deadline, job, expires_at(self._ttl, now)),
            )
            for table in ("background_runs", "background_events"):
                connection.execute(f"DELETE FROM {table} WHERE expiration <= ?", (now,))
            connection.execute("COMMIT")

    def get(self, owner: str, response_id: str) -> BackgroundRun | None:
        """The run's state, unless absent or expired."""
        row = self._row("status, error, cancel, deadline", owner, response_id)
        if row is None:
            return None
        status, error, cancel, deadline = row
        return BackgroundRun(status, json.loads(error) if error else None, bool(cancel), deadline)

    def job(self, owner: str, response_id: str) -> bytes | None:
        """The run's job."""
        row = self._row("job", owner, response_id)
        return bytes(row[0]) if row else None

    def _row(self, columns: str, owner: str, response_id: str) -> tuple[Any, ...] | None:
        with self._connect() as connection:
            found: tuple[Any, ...] | None = connection.execute(
                f"SELECT {columns} FROM background_runs "
                "WHERE owner = ? AND id = ? AND expiration > ?",
                (owner, response_id, time.time()),
            ).fetchone()
        return found

    def move(
        self,
        owner: str,
        response_id: str,
        status: str,
        error: dict[str, str] | None = None,
        only_from: tuple[str, ...] = UNFINISHED,
    ) -> bool:
        """Set the status of a run in one of `only_from`."""
        marks = ", ".join("?" for _ in only_from)
        with self._connect() as connection:
            cursor = connection.execute(
                "UPDATE background_runs SET status = ?, error = ? "
                f"WHERE owner = ? AND id = ? AND status IN ({marks})",
                (status, json.dumps(error) if error else None, owner, response_id, *only_from),
            )
        return cursor.rowcount > 0

    def cancel(self, owner: str, response_id: str) -> bool:
        """Flag an unfinished run."""
        with self._connect() as connection:
            cursor = connection.execute(
                f"UPDATE background_runs SET cancel = 1 "
                f"WHERE owner = ? AND id = ? AND {_UNFINISHED}",
                (owner, response_id),
            )
        return cursor.rowcount > 0

    def unfinished(self, owner: str, alive_after: float) -> int:
        """The owner's queued and running runs that may still have a worker."""
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT COUNT(*) FROM background_runs WHERE owner = ? AND {_UNFINISHED} "
                "AND deadline > ? AND expiration > ?",
                (owner, alive_after, time.time()),
            ).fetchone()
        return int(row[0])

    def append(self, owner: str, response_id: str, first: int, frames: list[str]) -> None:
        """One chunk of events."""
        last = first + len(frames) - 1
        expiration = expires_at(self._ttl, time.time())
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO background_events VALUES (?, ?, ?, ?, ?, ?)",
                (owner, response_id, first, last, pack(frames), expiration),
            )

    def events(self, owner: str, response_id: str, after: int) -> list[str]:
        """The events after `after`, from the chunks that hold them."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT first, frames FROM background_events WHERE owner = ? AND id = ? "
                "AND last > ? AND expiration > ? ORDER BY first",
                (owner, response_id, after, time.time()),
            ).fetchall()
        found: list[str] = []
        for first, data in rows:
            found += unpack(bytes(data))[max(0, after + 1 - first) :]
        return found
