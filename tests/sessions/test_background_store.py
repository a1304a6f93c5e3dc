"""The background runs' store, on SQLite and on DynamoDB (moto): states, jobs and event chunks."""

from __future__ import annotations

import time

import pytest

from helpers.settings import make_settings
from helpers.stores import dynamodb_table
from llm_server.stores.background import CHUNK_FRAMES
from llm_server.stores.factory import background_store


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, moto_endpoint, tmp_path):
    if request.param == "sqlite":
        return background_store(make_settings(store_path=str(tmp_path / "bg.sqlite3")))
    table, client = dynamodb_table(moto_endpoint)
    return background_store(make_settings(store="dynamodb", dynamodb_table=table), client)


def test_a_run_moves_once_to_a_final_status_and_is_its_owners_alone(store):
    job = bytes(range(256)) * 3000  # 768 KB: more than a DynamoDB item holds
    store.create("alice", "resp_1", job, time.time() + 60)
    assert store.get("bob", "resp_1") is None and store.job("bob", "resp_1") is None
    assert store.job("alice", "resp_1") == job
    now = time.time()
    assert store.unfinished("alice", now) == 1 and store.unfinished("bob", now) == 0
    assert store.unfinished("alice", now + 61) == 0  # past its deadline: no worker left
    assert not store.move("alice", "resp_1", "failed", None, ("in_progress",))  # it is queued
    assert store.move("alice", "resp_1", "in_progress", None, ("queued",))
    assert store.cancel("alice", "resp_1") and store.get("alice", "resp_1").cancel
    assert store.move("alice", "resp_1", "failed", {"code": "x", "message": "y"})
    assert not store.move("alice", "resp_1", "completed")  # a final status stays
    assert not store.cancel("alice", "resp_1")
    run = store.get("alice", "resp_1")
    assert (run.status, run.error, run.finished) == ("failed", {"code": "x", "message": "y"}, True)
    assert store.unfinished("alice", now) == 0
    assert not store.move("alice", "resp_1", "cancelled", None, ("queued",))


def test_events_are_read_from_any_number_on_across_chunks(store):
    store.create("alice", "resp_2", b"{}", time.time() + 60)
    frames = [f'event: e\ndata: {{"n": {n}, "text": "한국어"}}\n\n' for n in range(600)]
    first = 0
    for size in (CHUNK_FRAMES, 1, CHUNK_FRAMES, 600 - 2 * CHUNK_FRAMES - 1):
        store.append("alice", "resp_2", first, frames[first : first + size])
        first += size
    for after in (-1, 0, CHUNK_FRAMES - 1, CHUNK_FRAMES, CHUNK_FRAMES + 1, 400, 598, 599):
        assert store.events("alice", "resp_2", after) == frames[after + 1 :]
    assert store.events("bob", "resp_2", -1) == []
