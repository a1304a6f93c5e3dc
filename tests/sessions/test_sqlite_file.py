"""The SQLite stores hold no file open between operations, and expire rows by an index."""

import os
import sqlite3
from pathlib import Path

from llm_server.stores.responses import SQLiteResponseStore


def open_descriptors(path: Path) -> int:
    """How many of this process's descriptors point at the database or its WAL/SHM files."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") in names
        except OSError:
            continue
    return count


def test_connections_are_closed_when_each_operation_ends(tmp_path):
    path = tmp_path / "store.sqlite3"
    store = SQLiteResponseStore(str(path), 3600)
    for index in range(200):  # before: each left its file and WAL open until the GC ran
        store.put("owner", f"resp_{index}", "응답".encode() * 10)
        assert store.get("owner", f"resp_{index}") is not None
    assert open_descriptors(path) == 0


def test_expired_rows_are_found_by_an_index(tmp_path):
    path = tmp_path / "store.sqlite3"
    SQLiteResponseStore(str(path), 3600).put("owner", "resp_1", b"x")
    with sqlite3.connect(path) as connection:
        plan = connection.execute(
            "EXPLAIN QUERY PLAN DELETE FROM stored_responses WHERE expiration <= 1"
        ).fetchall()
    assert "USING INDEX stored_responses_by_expiration" in plan[0][-1]
