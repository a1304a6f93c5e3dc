"""The Vercel AI SDK's `openai()` Responses model with `store: true` over a tool loop: instead of
repeating its earlier output it sends `item_reference`s, and the server must resolve them among
the caller's stored items for the loop to go on.

On the local model the loop follows an answered turn, whose answer every step refers to; on the
OpenAI path a reasoning model's first step leaves a reasoning item the next step refers to, and
OpenAI must get it back as it made it.
"""

from __future__ import annotations

import pytest

from helpers.fake_openai import SUMMARY
from helpers.node_clients import run_node
from helpers.tenants import CALLER_KEY, tenant_sdk

TENANT = {"X-Api-Key": "client-1"}


def references(request: dict) -> list[str]:
    """The ids of the `item_reference`s a request's input carries."""
    return [item["id"] for item in request["input"] if item.get("type") == "item_reference"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_tool_loop_after_an_answered_turn_refers_to_the_answer_on_the_local_model(
    local_server, stream
):
    result = run_node(
        "ai_sdk.mjs",
        {
            "baseURL": f"{local_server.url}/v1",
            "headers": TENANT,
            "model": "local",
            "api": "responses",
            "stream": stream,
            "firstCall": True,
            "history": "My name is Mina.",
            "openai": {"store": True},
            "record": True,
        },
    )
    earlier, steps = result["earlier"], result["steps"]
    with tenant_sdk(local_server) as client:
        answered = client.responses.retrieve(earlier["responseId"])
        last = client.responses.input_items.list(steps[-1]["responseId"], order="asc").data
    answer = answered.output[0].id
    assert answered.output_text == earlier["text"]
    # the answered turn's request, then each step's: the answer referred to, not repeated
    assert [references(request) for request in result["requests"]] == [[], [answer], [answer]]
    assert steps[0]["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert steps[-1]["finishReason"] == "stop" and result["text"]
    assert [(i.type, getattr(i, "role", None)) for i in last] == [
        ("message", "user"),
        ("message", "assistant"),  # the reference, resolved
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
    ]
    assert last[1].content[0].text == earlier["text"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_reasoning_models_tool_loop_refers_to_its_reasoning_on_the_openai_path(
    server, fake, stream
):
    result = run_node(
        "ai_sdk.mjs",
        {
            "baseURL": f"{server.url}/v1",
            "headers": {**TENANT, "Authorization": f"Bearer {CALLER_KEY}"},  # the caller's key
            "model": "o4-mini",
            "api": "responses",
            "stream": stream,
            "openai": {"store": True, "reasoningEffort": "low", "reasoningSummary": "auto"},
            "record": True,
        },
    )
    first, second = result["requests"]
    with tenant_sdk(server) as client:
        made = client.responses.retrieve(result["steps"][0]["responseId"])
    reasoning = made.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == SUMMARY
    assert references(first) == [] and references(second) == [reasoning.id]
    assert [s["finishReason"] for s in result["steps"]] == ["tool-calls", "stop"]
    assert result["text"] == "echo: the tool said Sunny, 21C"
    upstream = fake.seen[-1].body["input"]
    assert [item.get("type", "message") for item in upstream] == [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
    ]
    assert upstream[1]["id"] == "rs_fake"  # OpenAI's own item, as OpenAI made it
    assert upstream[1]["encrypted_content"] == "enc-fake-1"
