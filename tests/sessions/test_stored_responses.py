"""Stored responses (`store`, `previous_response_id`, GET/DELETE, input items), on both stores.

Through the real SDK and plain HTTP, as their callers use them, with what the Responses API
stand-in received checked; a second tenant must not reach the first one's responses.
"""

import base64
import json
import os
import threading
import time

import httpx
import openresponses_types as ort
import pytest

import openai
from helpers.live_server import LiveServer
from helpers.openai_spec import validate
from helpers.tenants import CALLER_KEY, tenant_app
from helpers.tenants import tenant_sdk as sdk


def inputs(fake, index=-1):
    """What the upstream was sent in request `index`: (role, text) of each message."""
    return [(m["role"], m["content"]) for m in fake.seen[index].body["input"]]


def test_a_stored_response_is_read_back_and_continued(server, fake):
    with sdk(server) as client:
        first = client.responses.create(
            model="gpt-4o-mini", input="내 이름은 민지야", instructions="A"
        )
        second = client.responses.create(
            model="gpt-4o-mini", input="내 이름이 뭐지?", previous_response_id=first.id
        )
        raw = client.responses.with_raw_response.retrieve(first.id)
        listed = client.responses.input_items.with_raw_response.list(second.id)
        items = listed.parse()
    assert first.store is True and raw.parse().output_text == first.output_text
    ort.ResponseResource.model_validate_json(raw.http_response.text, strict=True)
    validate(raw.http_response.json(), "Response")
    assert inputs(fake) == [
        ("user", "내 이름은 민지야"),
        ("assistant", "echo: 내 이름은 민지야"),
        ("user", "내 이름이 뭐지?"),
    ]
    assert "instructions" not in fake.seen[-1].body  # instructions are not carried over
    assert second.previous_response_id == first.id
    assert [item.content[0].text for item in items.data] == ["내 이름이 뭐지?"]
    validate(listed.http_response.json(), "ResponseItemList")


def test_deleted_and_unstored_responses_are_gone(server, fake):
    with sdk(server) as client:
        kept = client.responses.create(model="gpt-4o-mini", input="hi")
        unstored = client.responses.create(model="gpt-4o-mini", input="hi", store=False)
        deleted = client.responses.delete(kept.id)
        for response_id in (kept.id, unstored.id):
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(response_id)
        with pytest.raises(openai.NotFoundError) as unknown:
            client.responses.create(
                model="gpt-4o-mini", input="again", previous_response_id=kept.id
            )
    assert deleted is None and unstored.store is False
    assert unknown.value.body["param"] == "previous_response_id" and len(fake.seen) == 2


def test_another_tenant_cannot_read_erase_or_continue_a_response(server, fake):
    with sdk(server) as owner, sdk(server, client="client-2") as other:
        secret = owner.responses.create(model="gpt-4o-mini", input="my secret plan")
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(secret.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.input_items.list(secret.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(secret.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model="gpt-4o-mini", input="?", previous_response_id=secret.id)
        assert owner.responses.retrieve(secret.id).id == secret.id  # nothing erased
    assert len(fake.seen) == 1


def test_a_streamed_response_is_stored_before_it_says_completed(server, fake):
    with sdk(server) as client:
        with client.responses.stream(model="gpt-4o-mini", input="스트림") as stream:
            final = stream.get_final_response()
        assert client.responses.retrieve(final.id).output_text == "echo: 스트림"


def test_a_long_chain_keeps_the_newest_turns_within_the_session_bounds(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, session_max_stored_turns=4)
    with LiveServer(app) as live, sdk(live) as client:
        previous = None
        for word in ("one", "two", "three", "four"):
            previous = client.responses.create(
                model="gpt-4o-mini", input=word, previous_response_id=previous
            ).id
    assert inputs(fake) == [
        ("user", "two"),
        ("assistant", "echo: two"),
        ("user", "three"),
        ("assistant", "echo: three"),
        ("user", "four"),
    ]


def test_a_record_larger_than_a_dynamodb_item_is_kept_whole(server, fake):
    text = base64.b64encode(os.urandom(600_000)).decode()  # ~800 KB that hardly compresses
    headers = {"Authorization": f"Bearer {CALLER_KEY}", "X-Api-Key": "client-1"}
    body = {"model": "gpt-4o-mini", "input": text, "max_output_tokens": 16}
    made = httpx.post(f"{server.url}/v1/responses", json=body, headers=headers, timeout=60)
    assert made.status_code == 200, made.text[:300]
    url = f"{server.url}/v1/responses/{made.json()['id']}/input_items"
    items = httpx.get(url, headers=headers, timeout=60).json()
    assert items["data"][0]["content"][0]["text"] == text and items["has_more"] is False
    assert json.loads(made.text)["store"] is True


def continued_upstream_bytes(live, fake, previous: str) -> int:
    """Continue `previous` with a short Korean question; the bytes the upstream was sent."""
    headers = {"Authorization": f"Bearer {CALLER_KEY}", "X-Api-Key": "client-1"}
    body = {"model": "gpt-4o-mini", "input": "이것들은?", "previous_response_id": previous}
    last = httpx.post(f"{live.url}/v1/responses", json=body, headers=headers, timeout=60)
    assert last.status_code == 200, last.text[:300]
    return len(json.dumps(fake.seen[-1].body))


def test_a_chain_of_stored_images_sends_no_more_than_its_byte_bound(kind, moto_endpoint, fake):
    """A chain of 12 stored 300 KB images and no text sent 3.6 MB upstream: the bound counted
    only text. Now everything a message sends counts against SESSION_MAX_BYTES."""
    bound = 1_048_576
    app, _ = tenant_app(kind, moto_endpoint, fake, session_max_bytes=bound)
    image = "data:image/png;base64," + base64.b64encode(os.urandom(225_000)).decode()
    headers = {"Authorization": f"Bearer {CALLER_KEY}", "X-Api-Key": "client-1"}
    part = {"type": "input_image", "image_url": image}
    with LiveServer(app) as live:
        previous = None
        for _ in range(12):
            body = {
                "model": "gpt-4o-mini",
                "input": [{"role": "user", "content": [part]}],
                "previous_response_id": previous,
            }
            made = httpx.post(f"{live.url}/v1/responses", json=body, headers=headers, timeout=60)
            assert made.status_code == 200, made.text[:300]
            previous = made.json()["id"]
        sent = continued_upstream_bytes(live, fake, previous)
    assert sent < bound + 2 * len(image)  # the bound, plus the newest record (always kept)
    assert sent > len(image)  # the newest images are still there


def test_a_chain_of_stored_tool_arguments_sends_no_more_than_its_byte_bound(
    kind, moto_endpoint, fake
):
    """Tool-call arguments and results count too (30 records once sent 25 MB upstream)."""
    bound = 1_048_576
    app, _ = tenant_app(kind, moto_endpoint, fake, session_max_bytes=bound)
    arguments = json.dumps({"blob": base64.b64encode(os.urandom(150_000)).decode()})
    headers = {"Authorization": f"Bearer {CALLER_KEY}", "X-Api-Key": "client-1"}
    with LiveServer(app) as live:
        previous = None
        for index in range(10):
            call = {"call_id": f"c{index}", "name": "f", "arguments": arguments}
            items = [
                {"role": "user", "content": f"{index}번째 호출"},
                {"type": "function_call", **call},
                {"type": "function_call_output", "call_id": f"c{index}", "output": "완료"},
            ]
            body = {"model": "gpt-4o-mini", "input": items, "previous_response_id": previous}
            made = httpx.post(f"{live.url}/v1/responses", json=body, headers=headers, timeout=60)
            assert made.status_code == 200, made.text[:300]
            previous = made.json()["id"]
        sent = continued_upstream_bytes(live, fake, previous)
    assert len(arguments) < sent < bound + 2 * len(arguments)  # was all 10: 2 MB


def test_a_continuation_refused_for_want_of_a_slot_reads_no_chain(kind, moto_endpoint, fake):
    """The chain is read only once the turn holds its slot: a request refused for want of
    one is a 429 at once (before, the chain was read first: here a 404 for the unknown id)."""
    from helpers.fake_openai import Step

    app, _ = tenant_app(kind, moto_endpoint, fake, max_concurrent_requests=1)
    headers = {"Authorization": f"Bearer {CALLER_KEY}", "X-Api-Key": "client-1"}
    fake.enqueue(Step(delay=3))
    with LiveServer(app) as live:
        url = f"{live.url}/v1/responses"
        body = {"model": "gpt-4o-mini", "input": "천천히"}
        holder = threading.Thread(
            target=httpx.post, args=(url,), kwargs={"json": body, "headers": headers, "timeout": 30}
        )
        holder.start()
        deadline = time.monotonic() + 30
        while not fake.seen and time.monotonic() < deadline:  # the first holds the only slot
            time.sleep(0.01)
        body = {"model": "gpt-4o-mini", "input": "또", "previous_response_id": "resp_unknown"}
        refused = httpx.post(url, json=body, headers=headers, timeout=30)
        holder.join()
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] in ("server_busy", "client_busy")
