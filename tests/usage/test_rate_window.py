"""The free-mode minute window on DynamoDB (moto's server): one write when the window is as
this container left it, every request counted when containers take turns."""

import json

import boto3
import pytest

from helpers.stores import dynamodb_table
from llm_server.stores.quotas import DynamoDBQuotaStore

T0 = 1_790_000_000.0


@pytest.fixture
def table(moto_endpoint):
    name, _ = dynamodb_table(moto_endpoint)
    return name


def container(moto_endpoint, table, calls=None):
    """A store with its own DynamoDB client, as one Lambda container has; `calls` collects
    the operations it sends."""
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="ap-northeast-2")
    if calls is not None:
        client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.append(model.name)
        )
    return DynamoDBQuotaStore(table, client)


def stored_stamps(store, client="key:a"):
    key = {"pk": {"S": f"quota#{client}"}, "sk": {"S": "rpm"}}
    return json.loads(
        store.client.get_item(TableName=store.table_name, Key=key)["Item"]["stamps"]["S"]
    )


def test_a_warm_containers_next_admission_of_a_client_is_one_write(moto_endpoint, table):
    calls = []
    store = container(moto_endpoint, table, calls)
    assert store.hit("key:a", "rpm", 2, 60, T0) == 0
    first, calls[:] = list(calls), []
    assert store.hit("key:a", "rpm", 2, 60, T0 + 1) == 0
    second, calls[:] = list(calls), []
    assert store.hit("key:a", "rpm", 2, 60, T0 + 2) == pytest.approx(58)
    assert (first, second) == (["GetItem", "PutItem"], ["PutItem"])
    assert calls == ["GetItem"]  # a refusal is decided on what is stored, not remembered
    assert stored_stamps(store) == [T0, T0 + 1]


def test_containers_taking_turns_count_every_request(moto_endpoint, table):
    one, two = container(moto_endpoint, table), container(moto_endpoint, table)
    admitted = [
        one.hit("key:a", "rpm", 3, 60, T0),
        two.hit("key:a", "rpm", 3, 60, T0 + 1),
        one.hit("key:a", "rpm", 3, 60, T0 + 2),  # what `one` remembers is out of date
    ]
    refused = [two.hit("key:a", "rpm", 3, 60, T0 + 3), one.hit("key:a", "rpm", 3, 60, T0 + 4)]
    assert admitted == [0, 0, 0]
    assert refused == [pytest.approx(57), pytest.approx(56)]
    assert stored_stamps(one) == [T0, T0 + 1, T0 + 2]
    assert one.hit("key:b", "rpm", 3, 60, T0 + 5) == 0  # another client's window is its own


def test_a_window_expired_and_made_again_is_not_taken_for_the_one_remembered(moto_endpoint, table):
    """TTL deletes a window after it lapses; another container may make it again, from
    scratch. A store remembering the old one must not write over the new one."""
    one, two = container(moto_endpoint, table), container(moto_endpoint, table)
    assert one.hit("key:a", "rpm", 2, 60, T0) == 0
    key = {"pk": {"S": "quota#key:a"}, "sk": {"S": "rpm"}}
    one.client.delete_item(TableName=table, Key=key)  # what DynamoDB's TTL does, some time after
    assert two.hit("key:a", "rpm", 2, 60, T0 + 120) == 0
    assert one.hit("key:a", "rpm", 2, 60, T0 + 121) == 0
    assert stored_stamps(one) == [T0 + 120, T0 + 121]
    assert two.hit("key:a", "rpm", 2, 60, T0 + 122) > 0


def test_what_a_container_remembers_is_bounded_and_the_oldest_goes_first(
    moto_endpoint, table, monkeypatch
):
    monkeypatch.setattr("llm_server.stores.quotas.KEPT_STAMPS", 3)
    calls = []
    store = container(moto_endpoint, table, calls)
    for client, at in [("key:a", T0), ("key:a", T0 + 1), ("key:b", T0 + 2), ("key:c", T0 + 3)]:
        assert store.hit(client, "rpm", 10, 60, at) == 0
    calls.clear()
    assert store.hit("key:c", "rpm", 10, 60, T0 + 4) == 0
    remembered, calls[:] = list(calls), []
    assert store.hit("key:a", "rpm", 10, 60, T0 + 5) == 0
    assert (remembered, calls) == (["PutItem"], ["GetItem", "PutItem"])
    assert stored_stamps(store, "key:a") == [T0, T0 + 1, T0 + 5]
