"""Background responses through the openai SDK: queued, polled, cancelled, streamed and resumed.

On the OpenAI path (the Responses API stand-in upstream) over both stores, and on the local
model; what a caller sees when a run's worker never starts or dies (`failed`, never stuck).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

import openai
from helpers.fake_openai import Step
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from helpers.stores import dynamodb_table
from llm_server.app import Services, create_app
from llm_server.openai_api.background import LATE_SECONDS, BackgroundResponses

CALLER_KEY = "sk-background-" + "b" * 40
OTHER_KEY = "sk-background-" + "o" * 40
CLIENTS = {CALLER_KEY: "client-1", OTHER_KEY: "client-2", "local": "client-1"}


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, moto_endpoint, monkeypatch, tmp_path) -> dict[str, Any]:
    """The settings of either store (DynamoDB on moto's server)."""
    if request.param == "sqlite":
        return {"store_path": str(tmp_path / "llm.sqlite3")}
    table, _ = dynamodb_table(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint)
    return {"store": "dynamodb", "dynamodb_table": table}


def served(fake, clock=None, **overrides) -> tuple[LiveServer, Services]:
    settings = make_settings(openai_base_url=fake.url, **overrides)
    local = FailingProvider(AssertionError("no local model here"), name="local")
    services = Services.from_settings(settings, local=local)
    if clock is not None:  # the same background responses, on the test's clock
        made = services.background
        services.__dict__["background"] = BackgroundResponses(
            made._store,
            settings,
            services.runner,
            services.responses,
            services.openai_conversations,
            clock,
        )
    return LiveServer(create_app(settings, services)), services


def sdk(server: LiveServer, key: str = CALLER_KEY) -> openai.OpenAI:
    """The SDK as a caller of its own (a client credential of the test settings' two)."""
    client = {"X-Api-Key": CLIENTS[key]}
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=key, max_retries=0, default_headers=client
    )


def settled(client: openai.OpenAI, response_id: str, seconds: float = 30) -> Any:
    """The response once it is no longer queued or in progress."""
    end = time.monotonic() + seconds
    while True:
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress") or time.monotonic() > end:
            return response
        time.sleep(0.05)


def test_a_background_response_is_queued_runs_on_its_own_and_is_stored(fake, store):
    server, _ = served(fake, **store)
    with server, sdk(server) as client:
        queued = client.responses.create(model="gpt-4o-mini", input="안녕 친구", background=True)
        done = settled(client, queued.id)
        follow = client.responses.create(
            model="gpt-4o-mini", input="그리고?", previous_response_id=queued.id
        )
        items = client.responses.input_items.list(queued.id)
    assert queued.status == "queued" and queued.background is True and queued.output == []
    assert done.status == "completed" and done.output_text == "echo: 안녕 친구"
    assert done.background is True and done.id == queued.id
    assert [m["content"] for m in fake.seen[-1].body["input"][:2]] == [
        "안녕 친구",
        "echo: 안녕 친구",
    ]
    assert follow.output_text == "echo: 그리고?"
    assert [item.content[0].text for item in items.data] == ["안녕 친구"]


def test_background_needs_store_and_names_the_field(fake, tmp_path):
    server, _ = served(fake, store_path=str(tmp_path / "s.sqlite3"))
    with server, sdk(server) as client, pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gpt-4o-mini", input="hi", background=True, store=False)
    assert refused.value.body["param"] == "background"
    assert fake.seen == []


def test_another_caller_can_neither_read_nor_cancel_it(fake, tmp_path):
    fake.enqueue(Step(delay=1.0))
    server, _ = served(fake, store_path=str(tmp_path / "s.sqlite3"))
    with server, sdk(server) as client, sdk(server, OTHER_KEY) as other:
        queued = client.responses.create(model="gpt-4o-mini", input="mine", background=True)
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(queued.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.cancel(queued.id)
        done = settled(client, queued.id)
    assert done.status == "completed" and done.output_text == "echo: mine"


def test_cancel_stops_the_upstream_call_frees_the_slot_and_keeps_what_was_generated(fake, tmp_path):
    fake.enqueue(Step(stall_after=1, stall=60))  # one delta, then nothing for a minute
    server, services = served(fake, store_path=str(tmp_path / "s.sqlite3"))
    with server, sdk(server) as client:
        queued = client.responses.create(model="gpt-4o-mini", input="긴 이야기", background=True)
        while not fake.seen or services.runner.status()["requests_in_progress"] == 0:
            time.sleep(0.02)
        time.sleep(0.3)  # the first delta has reached the run
        started = time.monotonic()
        cancelled = client.responses.cancel(queued.id)
        took = time.monotonic() - started
        again = client.responses.cancel(queued.id)
        later = client.responses.retrieve(queued.id)
        usage = httpx.get(f"{server.url}/api/v1/usage", headers={"X-Api-Key": "client-1"}).json()
    assert cancelled.status == again.status == later.status == "cancelled"
    assert took < 30  # not the upstream's stall: the call was stopped
    assert services.runner.status()["requests_in_progress"] == 0
    assert sum(row["output_tokens"] for row in usage["by_model"]) > 0  # what it generated


def test_a_streamed_background_response_resumes_after_a_dropped_connection(fake, store):
    server, _ = served(fake, **store)
    with server, sdk(server) as client:
        first: list[Any] = []
        with client.responses.create(
            model="gpt-4o-mini", input="하나 둘 셋 넷", background=True, stream=True
        ) as stream:
            for event in stream:
                first.append(event)
                if event.sequence_number == 3:
                    break  # the connection drops
        response_id = first[0].response.id
        rest = list(client.responses.retrieve(response_id, stream=True, starting_after=3))
    numbers = [e.sequence_number for e in first + rest]
    assert numbers == list(range(len(numbers)))
    assert rest[-1].type == "response.completed"
    text = "".join(e.delta for e in first + rest if e.type == "response.output_text.delta")
    assert text == rest[-1].response.output_text == "echo: 하나 둘 셋 넷"


def test_a_run_whose_worker_never_started_is_failed_once_past_its_deadline(fake, tmp_path):
    now = [1_800_000_000.0]
    server, services = served(
        fake,
        clock=lambda: now[0],
        store_path=str(tmp_path / "s.sqlite3"),
        background_max_per_owner=1,
    )

    async def lost(owner: str, response_id: str, caller_key: str) -> None:
        """An asynchronous invocation that never ran (the worker died before it started)."""

    services.__dict__["start_background"] = lost
    with server, sdk(server) as client:
        queued = client.responses.create(model="gpt-4o-mini", input="hi", background=True)
        with pytest.raises(openai.RateLimitError) as refused:
            client.responses.create(model="gpt-4o-mini", input="hi", background=True)
        waiting = client.responses.retrieve(queued.id)
        now[0] += services.settings.background_timeout_seconds + LATE_SECONDS + 1
        failed = client.responses.retrieve(queued.id)
        then = client.responses.create(model="gpt-4o-mini", input="hi", background=True)
    assert refused.value.body["code"] == "too_many_background_responses"
    assert waiting.status == "queued"
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert then.status == "queued"  # a failed run no longer counts against its owner
    assert fake.seen == []


def test_a_background_response_on_the_local_model(local_server):
    with sdk(local_server, "local") as client:
        queued = client.responses.create(
            model="local", input="Say hello.", background=True, max_output_tokens=8
        )
        done = settled(client, queued.id, seconds=120)
    assert queued.status == "queued"
    assert done.status in ("completed", "incomplete") and done.output_text
    assert done.usage.output_tokens <= 8


def test_refusals_name_what_is_wrong(fake, tmp_path):
    server, _ = served(fake, store_path=str(tmp_path / "s.sqlite3"))
    with server, sdk(server) as client:
        stored = client.responses.create(model="gpt-4o-mini", input="hi")
        with pytest.raises(openai.BadRequestError) as not_background:
            client.responses.cancel(stored.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.cancel("resp_" + "0" * 32)
        anonymous = httpx.post(
            f"{server.url}/v1/responses",
            json={"model": "gpt-4o-mini", "input": "hi", "background": True},
            headers={"Authorization": f"Bearer {CALLER_KEY}"},
        )
        queued = client.responses.create(model="gpt-4o-mini", input="hi", background=True)
        too_far = httpx.get(
            f"{server.url}/v1/responses/{queued.id}",
            params={"stream": "true", "starting_after": 2**40},
            headers={"Authorization": f"Bearer {CALLER_KEY}", "X-Api-Key": "client-1"},
        )
    assert not_background.value.body["param"] == "response_id"
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "client_credential_required"
    assert too_far.status_code == 400 and "starting_after" in too_far.text


def test_a_burst_of_background_requests_queues_no_more_than_the_owners_cap(fake, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    server, services = served(
        fake, store_path=str(tmp_path / "s.sqlite3"), background_max_per_owner=2
    )

    async def lost(owner: str, response_id: str, caller_key: str) -> None:
        """Runs that never start, so every one queued stays counted."""

    services.__dict__["start_background"] = lost
    body = {"model": "gpt-4o-mini", "input": "hi", "background": True}
    headers = {"Authorization": f"Bearer {CALLER_KEY}", "X-Api-Key": "client-1"}
    with server, ThreadPoolExecutor(12) as pool:
        answers = list(
            pool.map(
                lambda _: httpx.post(f"{server.url}/v1/responses", json=body, headers=headers),
                range(12),
            )
        )
    statuses = sorted(answer.status_code for answer in answers)
    # never past the cap; a burst may be refused whole (each counts the others), then retried
    assert statuses.count(200) <= 2 and set(statuses) <= {200, 429}
