"""What one owner may keep is bounded: stored responses by count and bytes, sessions by count.

Past a bound the owner's oldest go (another owner's never): 20 stored responses of 0.86 MB
each once added 53.6 MB for a week, and sessions had no bound at all.
"""

import base64
import os

import httpx

from helpers.live_server import LiveServer
from helpers.tenants import CALLER_KEY, post_chat, tenant_app


def headers(client: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {CALLER_KEY}", "X-Api-Key": client}


def store(server, client: str, text: str) -> str:
    body = {"model": "gpt-4o-mini", "input": text, "max_output_tokens": 8}
    made = httpx.post(f"{server.url}/v1/responses", json=body, headers=headers(client), timeout=60)
    assert made.status_code == 200, made.text[:300]
    return made.json()["id"]


def kept(server, client: str, response_id: str) -> bool:
    url = f"{server.url}/v1/responses/{response_id}"
    return httpx.get(url, headers=headers(client), timeout=60).status_code == 200


def test_an_owners_oldest_stored_responses_leave_past_the_count(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, stored_responses_max_per_owner=5)
    with LiveServer(app) as server:
        other = store(server, "client-2", "다른 사람의 응답")
        mine = [store(server, "client-1", f"질문 {i}") for i in range(7)]
        assert [kept(server, "client-1", rid) for rid in mine] == [False] * 2 + [True] * 5
        assert kept(server, "client-2", other)


def test_an_owners_stored_bytes_are_bounded(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, stored_responses_max_bytes_per_owner=1_048_576)
    with LiveServer(app) as server:
        # ~135 KB that hardly compresses; a record keeps it twice (the input, the echoed reply)
        texts = [base64.b64encode(os.urandom(100_000)).decode() for _ in range(6)]
        mine = [store(server, "client-1", text) for text in texts]
        still = [kept(server, "client-1", rid) for rid in mine]
    assert still[-1] and still[-2]
    assert not still[0] and not still[1]  # 6 records of ~270 KB are over 1 MiB


def test_an_owners_oldest_sessions_leave_past_the_count(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, sessions_max_per_owner=3)
    with LiveServer(app) as server:
        assert post_chat(server, "client-2", session_id="theirs", openai_api_key=CALLER_KEY)
        for name in ("s1", "s2", "s3", "s4", "s5"):
            answer = post_chat(server, session_id=name, openai_api_key=CALLER_KEY)
            assert answer.status_code == 200 and answer.json()["error_message"] is None
        # Another turn in a kept session is no new session: nothing else leaves.
        assert post_chat(server, session_id="s3", openai_api_key=CALLER_KEY).status_code == 200

        def found(client: str, name: str) -> bool:
            url = f"{server.url}/api/v1/sessions/{name}"
            return httpx.get(url, headers={"X-Api-Key": client}, timeout=30).status_code == 200

        assert [found("client-1", name) for name in ("s1", "s2", "s3", "s4", "s5")] == [
            False,
            False,
            True,
            True,
            True,
        ]
        assert found("client-2", "theirs")
