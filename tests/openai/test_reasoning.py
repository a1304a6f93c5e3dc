"""Reasoning on the OpenAI path, against the project's Responses stand-in with reasoning items.

`reasoning_effort` (chat completions) and `reasoning` (Responses) reach OpenAI's reasoning models;
what they reasoned comes back in each API's form (a `reasoning` item, `reasoning_content` with
`thinking_blocks`), its tokens counted and priced as output; sent back (a reasoning item in
`input`, the blocks on an assistant message, or a stored response continued), it reaches OpenAI
as the item it was. The local model, which cannot reason, refuses it by name.
"""

from __future__ import annotations

import pytest

import openai
from helpers.fake_openai import REASONING_TOKENS, SUMMARY
from helpers.openai_app import openai_app_server

CALLER_KEY = "sk-reasoning-" + "r" * 40


@pytest.fixture
def server(fake):
    with openai_app_server(fake) as live:
        yield live


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=CALLER_KEY, max_retries=0) as sdk:
        yield sdk


def test_responses_reasoning_comes_back_as_a_reasoning_item(client, fake):
    response = client.responses.create(
        model="o4-mini",
        input="왜 하늘은 파란가요?",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    sent = fake.seen[-1].body
    assert sent["reasoning"] == {"effort": "low", "summary": "auto"}
    assert "reasoning.encrypted_content" in sent["include"]
    item, message = response.output
    assert item.type == "reasoning" and item.summary[0].text == SUMMARY
    assert item.encrypted_content and message.type == "message"
    assert response.usage.output_tokens_details.reasoning_tokens == REASONING_TOKENS
    assert response.reasoning.effort == "low"


def test_a_reasoning_item_sent_back_reaches_openai_as_it_was(client, fake):
    first = client.responses.create(
        model="o4-mini",
        input="Question one",
        reasoning={"effort": "low"},
        include=["reasoning.encrypted_content"],
        store=False,
    )
    item = first.output[0]
    client.responses.create(
        model="o4-mini",
        input=[
            {"role": "user", "content": "Question one"},
            item.model_dump(exclude_none=True),
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "And two?"},
        ],
        reasoning={"effort": "low"},
        store=False,
    )
    sent = fake.seen[-1].body["input"]
    (back,) = [entry for entry in sent if entry.get("type") == "reasoning"]
    assert back["encrypted_content"] == "enc-fake-1" and back["id"] == "rs_fake"
    assert sent.index(back) == 1  # before the assistant message it preceded


def test_a_stored_response_continued_sends_its_reasoning_back(client, fake):
    first = client.responses.create(
        model="o4-mini", input="Question one", reasoning={"effort": "low"}
    )
    client.responses.create(
        model="o4-mini",
        input="And two?",
        reasoning={"effort": "low"},
        previous_response_id=first.id,
    )
    sent = fake.seen[-1].body["input"]
    assert [entry.get("type", "message") for entry in sent] == [
        "message",
        "reasoning",
        "message",
        "message",
    ]
    assert sent[1]["encrypted_content"] == "enc-fake-1"


def test_a_streamed_response_frames_the_reasoning_item_before_the_message(client):
    events = list(
        client.responses.create(
            model="o4-mini",
            input="Why?",
            reasoning={"effort": "medium", "summary": "detailed"},
            stream=True,
        )
    )
    added = {e.output_index: e.item.type for e in events if e.type == "response.output_item.added"}
    done = {e.output_index: e.item.type for e in events if e.type == "response.output_item.done"}
    assert added == done == {0: "reasoning", 1: "message"}
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    final = events[-1].response
    assert summary == SUMMARY == final.output[0].summary[0].text
    assert final.output[1].content[0].text == final.output_text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_chat_completions_reasoning_effort_returns_reasoning_content(client, fake, stream):
    request = dict(
        model="o4-mini", messages=[{"role": "user", "content": "Why?"}], reasoning_effort="high"
    )
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **request))
        deltas = [c.choices[0].delta.model_dump() for c in chunks if c.choices]
        reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
        blocks = [b for d in deltas for b in d.get("thinking_blocks") or ()]
    else:
        message = client.chat.completions.create(**request).choices[0].message.model_dump()
        reasoning, blocks = message["reasoning_content"], message["thinking_blocks"]
    assert fake.seen[-1].body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert reasoning == SUMMARY
    assert blocks and blocks[0]["type"] == "thinking" and blocks[0]["signature"]


def test_the_local_model_refuses_reasoning_by_name(local_server):
    with openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="x", max_retries=0) as sdk:
        with pytest.raises(openai.BadRequestError) as chat:
            sdk.chat.completions.create(
                model="local", messages=[{"role": "user", "content": "hi"}], reasoning_effort="low"
            )
        with pytest.raises(openai.BadRequestError) as responses:
            sdk.responses.create(model="local", input="hi", reasoning={"effort": "low"})
    assert chat.value.body["param"] == "reasoning_effort"
    assert responses.value.body["param"] == "reasoning"
