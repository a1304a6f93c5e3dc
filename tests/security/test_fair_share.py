"""One client holding long requests cannot take every slot: the others are still served."""

import concurrent.futures
import time

from helpers.fakes import StalledProvider
from helpers.live_server import LiveServer
from helpers.tenants import post_chat, tenant_app


def test_one_client_cannot_take_every_slot(kind, moto_endpoint):
    stalled = StalledProvider()
    app, _ = tenant_app(
        kind, moto_endpoint, None, local=stalled, llm_provider="local", max_concurrent_requests=4
    )
    with LiveServer(app) as server, concurrent.futures.ThreadPoolExecutor(3) as pool:
        held = [pool.submit(post_chat, server, "client-1") for _ in range(2)]
        deadline = time.monotonic() + 10
        while stalled.started < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        greedy = post_chat(server, "client-1")  # a third: past its half of the 4 slots
        other = pool.submit(post_chat, server, "client-2")
        while stalled.started < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        stalled.release.set()
        assert [f.result().status_code for f in held] == [200, 200]
        assert other.result().status_code == 200
    assert greedy.status_code == 429
    assert greedy.json()["error"]["code"] == "client_busy"
    assert greedy.headers["retry-after"] == "1"
