"""A store that throttles or is gone: retried, then a typed 503; an optional one only slows.

DynamoDB is moto behind a proxy that throttles as AWS does, or an address nothing answers; the
stores make their clients as deployed (botocore's retry config, the endpoint from the
environment). SQLite's equivalent is a database another process holds locked.
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from helpers.faulty_proxy import FaultyProxy
from helpers.live_server import LiveServer
from helpers.server_process import free_port
from helpers.settings import make_settings
from helpers.stores import dynamodb_table
from helpers.tenants import CALLER_KEY, SERVER_KEY
from llm_server.app import Services, create_app

KOREAN = "안녕하세요, 오늘 날씨 어때요?"


def app_on(monkeypatch, endpoint: str, table: str, fake, **overrides):
    """The app with every DynamoDB store made as deployed, against `endpoint`."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = make_settings(
        store="dynamodb",
        dynamodb_table=table,
        llm_provider="openai",
        openai_base_url=fake.url,
        openai_max_retries=0,
        **overrides,
    )
    return create_app(settings, Services.from_settings(settings))


def chat(server, **fields) -> httpx.Response:
    body = {"user_message": KOREAN, "openai_api_key": CALLER_KEY, **fields}
    return httpx.post(f"{server.url}/api/v1/chat", json=body, timeout=60)


def test_throttling_loses_no_turn(monkeypatch, moto_endpoint, fake):
    table, _ = dynamodb_table(moto_endpoint)
    with FaultyProxy(moto_endpoint, throttle_every=3) as proxy:
        app = app_on(monkeypatch, proxy.url, table, fake)
        with LiveServer(app) as server:
            answers = [chat(server, session_id="hot") for _ in range(30)]
            page = httpx.get(
                f"{server.url}/api/v1/sessions/hot",
                params={"limit": 100},
                headers={"Authorization": f"Bearer {CALLER_KEY}"},
            )
    assert [a.status_code for a in answers] == [200] * 30
    assert all(a.json()["error_message"] is None for a in answers)  # every turn was saved
    assert proxy.throttled >= 30  # a third of the store's calls were refused, and retried
    assert len(page.json()["turns"]) == 30


def test_a_hundred_turns_at_30_percent_random_throttling_lose_none(
    monkeypatch, moto_endpoint, fake
):
    """botocore's four attempts alone lost about a turn in thirty: answered, never stored.

    botocore's pauses between its own attempts are cut to a hundredth (its throttling backoff
    scale, 1 s, to 10 ms): the same attempts, a test of minutes instead of three.
    """
    from botocore.retries.standard import ExponentialBackoff

    scales = {**ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale": 0.01}
    monkeypatch.setattr(ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG", scales)
    table, _ = dynamodb_table(moto_endpoint)
    with FaultyProxy(moto_endpoint, throttle_rate=0.3, seed=39) as proxy:
        app = app_on(monkeypatch, proxy.url, table, fake)
        with LiveServer(app) as server:
            answers = [chat(server, session_id="busy") for _ in range(100)]
            proxy.throttle_rate = 0.0
            page = httpx.get(
                f"{server.url}/api/v1/sessions/busy",
                params={"limit": 200},
                headers={"Authorization": f"Bearer {CALLER_KEY}"},
            )
    assert [a.status_code for a in answers] == [200] * 100
    assert [a.json()["error_message"] for a in answers] == [None] * 100
    assert proxy.throttled > 100
    assert len(page.json()["turns"]) == 100


@pytest.fixture
def unreachable(monkeypatch, moto_endpoint, fake):
    """The app with its table at an address nothing answers, the shared cache on."""
    app = app_on(
        monkeypatch,
        f"http://127.0.0.1:{free_port()}",
        "llm-server-gone",
        fake,
        cache_enabled=True,
        cache_shared=True,
        openai_api_key=SERVER_KEY,
    )
    with LiveServer(app) as server:
        yield server


def test_a_chat_that_needs_no_store_is_answered_with_the_table_gone(unreachable, fake):
    response = chat(unreachable, temperature=0)  # cached: the shared tier cannot be asked
    assert response.status_code == 200, response.text
    assert response.json()["response_text"]
    assert len(fake.seen) == 1


def test_a_session_chat_is_a_503_with_retry_after_when_the_table_is_gone(unreachable, fake):
    response = chat(unreachable, session_id="s1")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert fake.seen == []


def test_free_mode_fails_closed_without_its_quota_store(unreachable, fake):
    body = {"user_message": KOREAN, "free_mode": True}
    response = httpx.post(
        f"{unreachable.url}/api/v1/chat", json=body, headers={"X-Api-Key": "client-1"}, timeout=60
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    assert fake.seen == []  # no quota, no free answer


def test_stored_responses_with_the_table_gone(unreachable, fake):
    headers = {"Authorization": f"Bearer {CALLER_KEY}"}
    url = f"{unreachable.url}/v1/responses"
    body = {"model": "gpt-4o-mini", "input": KOREAN}
    made = httpx.post(url, json=body, headers=headers, timeout=60)
    assert made.status_code == 200, made.text
    assert made.json()["store"] is False  # answered, and honest that it was not kept
    body = {"model": "gpt-4o-mini", "input": "또요", "previous_response_id": "resp_x"}
    continued = httpx.post(url, json=body, headers=headers, timeout=60)
    assert continued.status_code == 503
    assert continued.json()["error"]["code"] == "store_unavailable"
    assert "retry-after" in continued.headers


def test_a_locked_sqlite_database_answers_and_says_the_turn_was_not_saved(
    monkeypatch, fake, tmp_path
):
    monkeypatch.setattr("llm_server.stores.sqlite.BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "store.sqlite3"
    settings = make_settings(store_path=str(path), llm_provider="openai", openai_base_url=fake.url)
    with LiveServer(create_app(settings, Services.from_settings(settings))) as server:
        assert chat(server, session_id="s").status_code == 200
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than we wait
        try:
            locked = chat(server, session_id="s")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        again = chat(server, session_id="s")
    assert locked.status_code == 200  # the reply was made (and paid for): it is sent...
    assert "not saved" in locked.json()["error_message"]  # ...saying the session lacks it
    assert again.status_code == 200 and again.json()["error_message"] is None
    assert len(fake.seen[-1].body["input"]) == 3  # the first turn and this one: not the lost one


def test_an_unreadable_sqlite_database_is_a_503(fake, tmp_path):
    path = tmp_path / "store.sqlite3"
    settings = make_settings(store_path=str(path), llm_provider="openai", openai_base_url=fake.url)
    with LiveServer(create_app(settings, Services.from_settings(settings))) as server:
        assert chat(server, session_id="s").status_code == 200
        for name in ("store.sqlite3-wal", "store.sqlite3-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        path.write_bytes(b"not a database" * 100)
        broken = chat(server, session_id="s")
    assert broken.status_code == 503
    assert broken.json()["error"]["code"] == "store_unavailable"
