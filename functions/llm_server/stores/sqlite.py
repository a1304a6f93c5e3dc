"""One SQLite file shared by the local stores, its schema created on first use.

`sqlite3` is imported on first use: a Lambda on the DynamoDB store never loads it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3


class SQLiteFile:
    """Opens connections to `path` (a new one per call: safe across threads and processes)."""

    def __init__(self, path: str, schema: tuple[str, ...]) -> None:
        self._path = Path(path)
        self._schema = schema
        self._ready = False
        self._lock = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """A connection in autocommit mode, with the schema in place."""
        import sqlite3

        if not self._ready:
            with self._lock:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with sqlite3.connect(self._path, timeout=10, isolation_level=None) as setup:
                    setup.execute("PRAGMA journal_mode=WAL")
                    for statement in self._schema:
                        setup.execute(statement)
                self._ready = True
        return sqlite3.connect(self._path, timeout=10, isolation_level=None)
