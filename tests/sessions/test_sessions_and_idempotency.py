"""Sessions and idempotent retries through the HTTP API, on SQLite and on DynamoDB (moto)."""

import concurrent.futures
import sys
import time

import httpx
import pytest

from helpers.clock import FakeClock
from helpers.fake_openai import Step
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.stores import settings_and_stores
from llm_server.app import Services, create_app
from llm_server.stores.sessions import StoredTurn

KEY = "sk-session-" + "k" * 40


@pytest.fixture(params=["sqlite", "dynamodb"])
def kind(request):
    return request.param


def serve(kind, moto_endpoint, fake=None, local=None, **overrides):
    if fake is not None:
        overrides["openai_base_url"] = fake.url
    settings, sessions, guard = settings_and_stores(kind, moto_endpoint, **overrides)
    local = local or FailingProvider(AssertionError("no local model here"), name="local")
    service = Services.from_settings(settings, local=local, sessions=sessions)
    app = create_app(settings, service)
    app.state.idempotency = guard
    return LiveServer(app), (settings, sessions, guard)


def say(server, text, session="s1", **fields):
    body = {"session_id": session, "user_message": text, "openai_api_key": KEY, **fields}
    return httpx.post(f"{server.url}/api/v1/chat", json=body, timeout=30)


def sent_input(fake, index=-1):
    return [(m["role"], m["content"]) for m in fake.seen[index].body["input"]]


def test_turns_are_stored_and_prepended(kind, moto_endpoint, fake):
    live, _ = serve(kind, moto_endpoint, fake)
    with live as server:
        say(server, "My name is Jisoo.")
        say(server, "What is my name?")
        history = httpx.get(f"{server.url}/api/v1/sessions/s1").json()
    assert sent_input(fake) == [
        ("user", "My name is Jisoo."),
        ("assistant", "echo: My name is Jisoo."),
        ("user", "What is my name?"),
    ]
    turns = history["turns"]
    assert [t["user"] for t in turns] == ["My name is Jisoo.", "What is my name?"]
    assert turns[1]["assistant"] == "echo: What is my name?"
    assert turns[0]["model"] == "gpt-4o-mini-2024-07-18" and turns[0]["output_tokens"] == 5
    assert KEY not in str(history)


def test_explicit_history_wins_over_the_stored_one(kind, moto_endpoint, fake):
    live, _ = serve(kind, moto_endpoint, fake)
    with live as server:
        say(server, "first")
        say(server, "second", conversation_history=["user: given", "assistant: ok"])
    assert sent_input(fake) == [("user", "given"), ("assistant", "ok"), ("user", "second")]


def test_history_is_trimmed_to_the_turn_and_token_budgets(kind, moto_endpoint, fake):
    live, _ = serve(kind, moto_endpoint, fake, session_max_turns=2)
    with live as server:
        for text in ("one", "two", "three", "four"):
            say(server, text)
    assert [c for r, c in sent_input(fake) if r == "user"] == ["two", "three", "four"]
    live, _ = serve(kind, moto_endpoint, fake, session_max_tokens=12)
    with live as server:
        say(server, "x" * 40)  # ~10 tokens for the user side alone, +~12 with the reply
        say(server, "short")
        say(server, "last")
    assert [c for r, c in sent_input(fake) if r == "user"] == ["short", "last"]


def test_expired_turns_are_not_used(kind, moto_endpoint, fake):
    clock = FakeClock()
    live, _ = serve(kind, moto_endpoint, fake, clock=clock, session_ttl_seconds=1)
    with live as server:
        say(server, "기억해 줘")
        clock.now += 0.9  # a turn lives at least its TTL
        say(server, "아직 있어?")
        clock.now += 2.0  # and at most a second more: both are gone now
        say(server, "still there?")
        gone = httpx.get(f"{server.url}/api/v1/sessions/s1")
    assert sent_input(fake, 1) == [
        ("user", "기억해 줘"),
        ("assistant", "echo: 기억해 줘"),
        ("user", "아직 있어?"),
    ]
    assert sent_input(fake) == [("user", "still there?")]
    assert [t["user"] for t in gone.json()["turns"]] == ["still there?"]


def test_erase(kind, moto_endpoint, fake):
    live, _ = serve(kind, moto_endpoint, fake)
    with live as server:
        say(server, "secret")
        erased = httpx.delete(f"{server.url}/api/v1/sessions/s1")
        missing = httpx.get(f"{server.url}/api/v1/sessions/s1")
        say(server, "after")
    assert erased.status_code == 204
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "session_not_found"
    assert sent_input(fake) == [("user", "after")]


def test_racing_requests_lose_no_turn(kind, moto_endpoint, fake):
    live, _ = serve(kind, moto_endpoint, fake, max_concurrent_per_client=10)
    with live as server, concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: say(server, f"message {i}", session="race"), range(16)))
        turns = httpx.get(f"{server.url}/api/v1/sessions/race").json()["turns"]
    assert all(r.status_code == 200 for r in replies)
    assert sorted(t["user"] for t in turns) == sorted(f"message {i}" for i in range(16))


@pytest.fixture
def busy_threads():
    """Threads switch every microsecond instead of every 5 ms, so racing writes interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_appends_racing_on_one_session_keep_every_turn(kind, moto_endpoint, busy_threads):
    _, store, _ = settings_and_stores(kind, moto_endpoint)
    turns = [StoredTurn(f"메시지 {i}", "답", "m", 1, 1, "2026-11-26T00:00:00Z") for i in range(16)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda turn: store.append("owner", "race", turn), turns))
    kept = store.recent("owner", "race", 100)
    assert sorted(t.user for t in kept) == sorted(t.user for t in turns)


def test_sqlite_sessions_survive_a_restart(moto_endpoint, fake, tmp_path):
    path = str(tmp_path / "store.sqlite3")
    first, _ = serve("sqlite", moto_endpoint, fake, store_path=path)
    with first as server:
        say(server, "before restart")
    second, _ = serve("sqlite", moto_endpoint, fake, store_path=path)
    with second as server:
        say(server, "after restart")
    assert sent_input(fake)[0] == ("user", "before restart")


@pytest.mark.model
def test_multi_turn_memory_on_the_real_local_model(kind, moto_endpoint, local_provider):
    live, _ = serve(kind, moto_endpoint, local=local_provider)
    with live as server:
        ask = {"session_id": "local", "max_tokens": 12, "temperature": 0}
        first = httpx.post(
            f"{server.url}/api/v1/chat",
            json={"user_message": "My name is Jisoo.", **ask},
            timeout=60,
        ).json()
        second = httpx.post(
            f"{server.url}/api/v1/chat",
            json={"user_message": "What is my name?", **ask},
            timeout=60,
        ).json()
        alone = httpx.post(
            f"{server.url}/api/v1/chat",
            json={"user_message": "What is my name?", **ask, "session_id": "fresh"},
            timeout=60,
        ).json()
        turns = httpx.get(f"{server.url}/api/v1/sessions/local").json()["turns"]
    assert first["success"] and second["success"]
    # The second request carried the first exchange: more prompt tokens than the same question
    # alone, by at least the first message and the first reply.
    assert second["input_tokens"] >= alone["input_tokens"] + first["output_tokens"] + 5
    assert [t["assistant"] for t in turns] == [first["response_text"], second["response_text"]]


def test_an_idempotent_retry_returns_the_first_result_with_one_model_call(
    kind, moto_endpoint, fake
):
    live, _ = serve(kind, moto_endpoint, fake)
    with live as server:
        headers = {"Idempotency-Key": "order-42"}
        body = {"user_message": "charge me once", "openai_api_key": KEY}
        first = httpx.post(f"{server.url}/api/v1/chat", json=body, headers=headers)
        retry = httpx.post(f"{server.url}/api/v1/chat", json=body, headers=headers)
        other_body = httpx.post(
            f"{server.url}/api/v1/chat", json={**body, "user_message": "different"}, headers=headers
        )
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(fake.seen) == 1
    assert other_body.status_code == 422
    assert other_body.json()["error"]["code"] == "idempotency_key_reused"


def test_in_flight_duplicate_is_409_and_failures_are_forgotten(kind, moto_endpoint, fake):
    live, _ = serve(kind, moto_endpoint, fake, openai_max_retries=0)
    fake.enqueue(Step(delay=2))
    with live as server, concurrent.futures.ThreadPoolExecutor(1) as pool:
        headers = {"Idempotency-Key": "slow-1"}
        body = {"user_message": "slow", "openai_api_key": KEY}
        url = f"{server.url}/api/v1/chat"
        slow = pool.submit(httpx.post, url, json=body, headers=headers, timeout=30)
        deadline = time.monotonic() + 10
        while not fake.seen and time.monotonic() < deadline:  # the first is now in progress
            time.sleep(0.01)
        duplicate = httpx.post(url, json=body, headers=headers)
        assert slow.result().status_code == 200
        fake.enqueue(Step(status=500))
        failed = httpx.post(url, json=body, headers={"Idempotency-Key": "fails-1"})
        retried = httpx.post(url, json=body, headers={"Idempotency-Key": "fails-1"})
    assert duplicate.status_code == 409 and duplicate.headers["retry-after"] == "1"
    assert failed.status_code == 502
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
