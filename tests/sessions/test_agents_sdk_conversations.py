"""The OpenAI Agents SDK keeping its chat on the server, over two `Runner.run`s: in an
`OpenAIConversationsSession` (the SDK reads `/v1/conversations` and sends the history itself) and
with `conversation_id` (the server reads the history), on the local model and on the OpenAI path
over both stores.

Both point at the server by base URL alone; tracing is off (it would post to OpenAI).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIConversationsSession,
    OpenAIResponsesModel,
    Runner,
    set_tracing_disabled,
)

from helpers.tenants import sent_messages, tenant_sdk
from openai import AsyncOpenAI

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
FIRST, SECOND = "My name is 민준.", "What is my name?"
# What the stand-in answers (an echo): the second run's input, then the whole conversation.
SECOND_INPUT = [("user", FIRST), ("assistant", f"echo: {FIRST}"), ("user", SECOND)]
BOTH_RUNS = [*SECOND_INPUT, ("assistant", f"echo: {SECOND}")]


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    yield


def agent(client: AsyncOpenAI, model: str) -> Agent:
    return Agent(
        name="memory",
        instructions="You are brief.",
        model=OpenAIResponsesModel(model=model, openai_client=client),
        model_settings=ModelSettings(temperature=0, max_tokens=300),  # room to finish
    )


def two_runs_in_a_session(server, model: str):
    """Two runs in one new session; their results and the session's items after them."""

    async def run():
        async with tenant_sdk(server, sdk=AsyncOpenAI) as client:
            session = OpenAIConversationsSession(openai_client=client)
            first = await Runner.run(agent(client, model), FIRST, session=session)
            second = await Runner.run(agent(client, model), SECOND, session=session)
            return first, second, await session.get_items(), session.session_id

    return asyncio.run(run())


def messages(items) -> list[tuple[str, str]]:
    """(role, text) of the SDK's message items."""
    return [(item.role, item.content[0].text) for item in items]


def stored_messages(items) -> list[tuple[str, str]]:
    """(role, text) of items as dicts (the session's own), whatever form the text is in."""
    found = []
    for item in items:
        content = item["content"]
        found.append((item["role"], content if isinstance(content, str) else content[0]["text"]))
    return found


def test_a_conversations_session_on_the_local_model(local_server):
    first, second, items, conversation_id = two_runs_in_a_session(local_server, LOCAL)
    with tenant_sdk(local_server) as client:
        sent = client.responses.input_items.list(second.last_response_id, order="asc").data
        kept = client.conversations.items.list(conversation_id, order="asc").data
    history = [("user", FIRST), ("assistant", first.final_output)]
    assert messages(sent) == [*history, ("user", SECOND)]  # the second run's input
    assert messages(kept) == [*history, ("user", SECOND), ("assistant", second.final_output)]
    assert stored_messages(items) == messages(kept)


def test_a_conversations_session_on_the_openai_path(server, fake):
    first, second, items, conversation_id = two_runs_in_a_session(server, "gpt-4o-mini")
    with tenant_sdk(server) as client:
        kept = client.conversations.items.list(conversation_id, order="asc").data
    assert first.final_output == f"echo: {FIRST}" and second.final_output == f"echo: {SECOND}"
    assert sent_messages(fake) == SECOND_INPUT
    assert messages(kept) == stored_messages(items) == BOTH_RUNS


def test_runs_on_a_server_side_conversation_id(server, fake):
    """`Runner.run(conversation_id=...)` sends only the new input; the server adds the rest."""

    async def run():
        async with tenant_sdk(server, sdk=AsyncOpenAI) as client:
            conversation = await client.conversations.create()
            memory = agent(client, "gpt-4o-mini")
            await Runner.run(memory, FIRST, conversation_id=conversation.id)
            second = await Runner.run(memory, SECOND, conversation_id=conversation.id)
            items = await client.conversations.items.list(conversation.id, order="asc")
            sent = await client.responses.input_items.list(second.last_response_id)
            return second, items.data, sent.data

    second, items, sent = asyncio.run(run())
    assert messages(sent) == [("user", SECOND)]
    assert sent_messages(fake) == SECOND_INPUT
    assert second.final_output == f"echo: {SECOND}"
    assert messages(items) == BOTH_RUNS
