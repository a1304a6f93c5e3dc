"""A session holds a bounded number of turns and bytes, and is read a page at a time."""

import httpx

from helpers.live_server import LiveServer
from helpers.tenants import CALLER_KEY, post_chat, tenant_app

OWN_KEY = {"openai_api_key": CALLER_KEY}


def pages(server, session_id, limit):
    """Every page of a session, following `next_cursor`."""
    found, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(
            f"{server.url}/api/v1/sessions/{session_id}",
            params=params,
            headers={"X-Api-Key": "client-1"},
            timeout=30,
        ).json()
        found.append(page["turns"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_the_oldest_turns_are_pruned_past_the_turn_bound(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, session_max_stored_turns=3)
    with LiveServer(app) as server:
        for text in ("one", "two", "three", "four", "five"):
            post_chat(server, session_id="t", user_message=text, **OWN_KEY)
        turns = pages(server, "t", 50)[0]
    assert [turn["user"] for turn in turns] == ["three", "four", "five"]


def test_the_oldest_turns_are_pruned_past_the_byte_bound(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, session_max_bytes=4096)
    with LiveServer(app) as server:
        for index in range(5):  # about 1,200 bytes a turn with its echoed reply
            post_chat(server, session_id="b", user_message=f"{index}" * 600, **OWN_KEY)
        turns = pages(server, "b", 50)[0]
    assert [turn["user"][0] for turn in turns] == ["2", "3", "4"]
    assert sum(len(t["user"].encode()) + len(t["assistant"].encode()) for t in turns) <= 4096


def test_a_flood_into_one_session_stays_within_its_bounds(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, session_max_bytes=1_000_000)
    message = "가" * 50_000  # 150 KB of Korean; about 300 KB a turn with the reply
    with LiveServer(app) as server:
        for _ in range(12):  # 3.6 MB in all without a bound
            assert post_chat(server, session_id="f", user_message=message, **OWN_KEY).is_success
        found = [turn for page in pages(server, "f", 1) for turn in page]
    stored = sum(len(t["user"].encode()) + len(t["assistant"].encode()) for t in found)
    assert len(found) == 3 and stored <= 1_000_000


def test_reading_a_session_is_paginated(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake)
    with LiveServer(app) as server:
        for index in range(7):
            post_chat(server, session_id="p", user_message=f"m{index}", **OWN_KEY)
        found = pages(server, "p", 3)
        url = f"{server.url}/api/v1/sessions/p"
        headers = {"X-Api-Key": "client-1"}
        too_many = httpx.get(url, params={"limit": 201}, headers=headers)
        bad_cursor = httpx.get(url, params={"cursor": "x' OR 1=1"}, headers=headers)
        default = httpx.get(url, headers=headers).json()
    assert [[t["user"] for t in page] for page in found] == [
        ["m0", "m1", "m2"],
        ["m3", "m4", "m5"],
        ["m6"],
    ]
    assert too_many.status_code == 422 and "limit" in too_many.json()["error"]["param"]
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json()["error"]["param"]
    assert len(default["turns"]) == 7 and default["next_cursor"] is None
