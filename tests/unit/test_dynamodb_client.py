"""A store's DynamoDB client, first used from several threads at once, is made once."""

import concurrent.futures
import threading

from llm_server.stores.dynamodb import DynamoDBTable


def test_threads_using_a_store_first_together_share_one_client(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "offline")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "offline")
    table = DynamoDBTable("llm-server")
    start = threading.Barrier(8)

    def first_use(_: int) -> object:
        start.wait()
        return table.client

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(first_use, range(8)))
    assert len({id(client) for client in clients}) == 1
