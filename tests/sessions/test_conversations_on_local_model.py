"""Conversations and item references on the local model, through the OpenAI SDK.

The model's words vary, its prompt does not: the local tokenizer counts exactly the prompt a turn
is run on (`input_tokens.count` equals the response's `usage.input_tokens`), so a turn that saw
the earlier one is told by its count being that of the earlier messages spelled out.
"""

from __future__ import annotations

import pytest

from helpers.tenants import tenant_sdk

LOCAL = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture
def client(local_server):
    with tenant_sdk(local_server) as sdk:
        yield sdk


def ask(client, **fields):
    """A short greedy turn on the local model."""
    return client.responses.create(model=LOCAL, temperature=0, max_output_tokens=16, **fields)


def user(text: str) -> dict[str, str]:
    return {"type": "message", "role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"type": "message", "role": "assistant", "content": text}


def counted(client, **fields) -> int:
    return client.responses.input_tokens.count(model=LOCAL, **fields).input_tokens


def test_a_conversations_second_turn_is_run_on_the_first(client):
    conversation = client.conversations.create()
    first = ask(client, input="My name is Mina.", conversation=conversation.id)
    after_first = client.conversations.items.list(conversation.id, order="asc").data
    predicted = counted(client, input="What is my name?", conversation=conversation.id)
    second = ask(client, input="What is my name?", conversation=conversation.id)
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [(i.role, i.content[0].text) for i in after_first] == [
        ("user", "My name is Mina."),
        ("assistant", first.output_text),
    ]
    assert [(i.role, i.content[0].text) for i in items[2:]] == [
        ("user", "What is my name?"),
        ("assistant", second.output_text),
    ]
    assert [i.id for i in items[:2]] == [i.id for i in after_first]  # grew, nothing rewritten
    assert items[3].id == second.output[0].id
    spelled_out = counted(
        client,
        input=[user("My name is Mina."), assistant(first.output_text), user("What is my name?")],
    )
    assert second.usage.input_tokens == predicted == spelled_out
    assert spelled_out > counted(client, input="What is my name?")


def test_item_references_resolve_to_the_callers_earlier_items(client):
    first = ask(client, input="The password is bluebird.")
    asked = client.responses.input_items.list(first.id).data[0]
    question = "What is the password?"
    second = ask(
        client,
        input=[
            {"type": "item_reference", "id": asked.id},
            {"type": "item_reference", "id": first.output[0].id},
            user(question),
        ],
    )
    kept = client.responses.input_items.list(second.id, order="asc").data
    spelled_out = [user("The password is bluebird."), assistant(first.output_text), user(question)]
    assert [(i.role, i.content[0].text) for i in kept] == [
        ("user", "The password is bluebird."),
        ("assistant", first.output_text),
        ("user", question),
    ]
    assert second.usage.input_tokens == counted(client, input=spelled_out)
