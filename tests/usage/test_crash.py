"""A local server killed at once (SIGKILL, power) keeps what it answered: every answered turn's
ledger row is written, and its budget's counter agrees with the ledger to the picodollar."""

from __future__ import annotations

import signal
import time

import httpx

from helpers.server_process import ServerProcess
from helpers.tenants import SERVER_KEY
from llm_server.stores.quotas import SQLiteQuotaStore
from llm_server.stores.usage import SQLiteUsageStore


def test_a_sigkill_right_after_a_hundred_answers_loses_no_ledger_row(fake):
    """The server answered first and wrote every quarter second: a kill lost all 100 rows."""
    env = {
        "LLM_PROVIDER": "openai",
        "OPENAI_BASE_URL": fake.url,
        "OPENAI_API_KEY": SERVER_KEY,
        "CLIENT_API_KEYS": "client-1",
        "TENANT_MONTHLY_BUDGET_USD": "100",
        "FREE_MODE_REQUESTS_PER_MINUTE": "1000",
    }
    headers = {"X-Api-Key": "client-1"}
    with ServerProcess(**env) as server:
        owner = httpx.get(f"{server.url}/api/v1/usage", headers=headers).json()["owner"]
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            answers = [
                client.post("/api/v1/chat", json={"user_message": "안녕", "free_mode": True})
                for _ in range(100)
            ]
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
        path = server.store_path
    assert [a.status_code for a in answers] == [200] * 100
    month = time.strftime("%Y-%m", time.gmtime())
    (row,) = SQLiteUsageStore(path).month(owner, month)
    assert row.requests == 100 and row.api_key_source == "server"
    assert SQLiteQuotaStore(path).used(owner, f"usd#{month}") == row.cost_pico > 0
