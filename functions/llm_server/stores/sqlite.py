"""One SQLite file shared by the local stores, its schema created on first use.

`sqlite3` is imported on first use: a Lambda on the DynamoDB store never loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

BUSY_TIMEOUT_SECONDS = 10  # how long a write waits for another's lock before "locked"


class SQLiteFile:
    """Opens connections to `path` (a new one per use: safe across threads and processes)."""

    def __init__(self, path: str, schema: tuple[str, ...]) -> None:
        self._path = Path(path)
        self._schema = schema
        self._ready = False
        self._lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._writer_lock = threading.Lock()

    @contextmanager
    def writer(self) -> Iterator[sqlite3.Connection]:
        """The one connection kept open for a store's frequent writes, one user at a time.

        For a write on every request (the usage ledger), where opening a connection each time
        would cost more than the write.
        """
        with self._writer_lock:
            if self._writer is None:
                with self.connect():  # the schema, once
                    pass
                self._writer = _open(self._path, check_same_thread=False)
            yield self._writer

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode, with the schema in place, closed when done.

        `sqlite3.Connection`'s own context manager ends a transaction but leaves the file and
        its WAL open until the garbage collector runs: thousands of descriptors under load.
        """
        import sqlite3

        if not self._ready:
            with self._lock:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                setup = sqlite3.connect(self._path, BUSY_TIMEOUT_SECONDS, isolation_level=None)
                try:
                    setup.execute("PRAGMA journal_mode=WAL")
                    for statement in self._schema:
                        setup.execute(statement)
                finally:
                    setup.close()
                self._ready = True
        connection = _open(self._path)
        try:
            yield connection
        finally:
            connection.close()


def _open(path: Path, check_same_thread: bool = True) -> sqlite3.Connection:
    import sqlite3

    connection = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
        check_same_thread=check_same_thread,
    )
    # WAL with NORMAL: a commit is safe from a crash of the process (the WAL is written), and
    # is flushed to disk at checkpoints rather than each time (SQLite's own advice for WAL)
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection
