"""Anthropic's Messages API (`/v1/messages`) on the local model, through the official `anthropic`
SDK as its users call it: whole and streamed, Korean, tools both ways, thinking asked of a model
that cannot think, token counting, and every error in Anthropic's shape."""

from __future__ import annotations

import json

import httpx
import pytest

import anthropic

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def sdk(local_server):
    with anthropic.Anthropic(base_url=local_server.url, api_key="client-1", max_retries=0) as sdk:
        yield sdk


def test_a_korean_message_is_answered_whole(sdk):
    message = sdk.messages.create(
        model="local",
        max_tokens=20,
        extra_body={"temperature": 0},  # the SDK (2.17) dropped the argument; older send it
        messages=[{"role": "user", "content": "안녕하세요! 오늘 기분 어때요?"}],
    )
    assert message.id.startswith("msg_") and message.model == "local"
    assert message.role == "assistant" and message.type == "message"
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 20


def test_the_stream_builds_the_same_message_as_the_whole_answer(sdk):
    request = dict(
        model="local",
        max_tokens=16,
        extra_body={"temperature": 0},  # the SDK (2.17) dropped the argument; older send it
        system="You answer briefly.",
        messages=[{"role": "user", "content": "Name three colours."}],
    )
    whole = sdk.messages.create(**request)
    with sdk.messages.stream(**request) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == whole.content[0].text
    assert final.stop_reason == whole.stop_reason
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(kinds)
    assert "message_delta" in kinds


def test_a_forced_tool_is_called_and_its_result_answered(sdk):
    question = {"role": "user", "content": "What's the weather in Paris?"}
    first = sdk.messages.create(
        model="local",
        max_tokens=60,
        extra_body={"temperature": 0},  # the SDK (2.17) dropped the argument; older send it
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[question],
    )
    (use,) = [block for block in first.content if block.type == "tool_use"]
    assert first.stop_reason == "tool_use" and use.name == "get_weather"
    assert isinstance(use.input["city"], str)
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21C"}
    second = sdk.messages.create(
        model="local",
        max_tokens=60,
        extra_body={"temperature": 0},  # the SDK (2.17) dropped the argument; older send it
        tools=[WEATHER],
        messages=[
            question,
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {"role": "user", "content": [result]},
        ],
    )
    text = "".join(block.text for block in second.content if block.type == "text")
    assert second.stop_reason == "end_turn" and "sunny" in text.lower()


def test_a_streamed_tool_call_arrives_as_input_json(sdk):
    with sdk.messages.stream(
        model="local",
        max_tokens=60,
        extra_body={"temperature": 0},  # the SDK (2.17) dropped the argument; older send it
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Seoul?"}],
    ) as stream:
        deltas = [e.delta.partial_json for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    (use,) = final.content
    assert use.type == "tool_use" and json.loads("".join(deltas)) == use.input
    assert final.stop_reason == "tool_use"


def test_thinking_on_a_model_that_cannot_think(sdk):
    """Adaptive (Claude Code's): the model decides, and this one does not think. Enabled with a
    budget: refused by name."""
    adaptive = sdk.messages.create(
        model="local",
        max_tokens=10,
        thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "hi"}],
    )
    assert [block.type for block in adaptive.content] == ["text"]
    with pytest.raises(anthropic.BadRequestError) as raised:
        sdk.messages.create(
            model="local",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "hi"}],
        )
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert raised.value.body["error"]["message"].startswith("thinking")


def test_count_tokens_is_the_models_own_count(sdk):
    request = dict(
        model="local",
        system="You are brief.",
        messages=[{"role": "user", "content": "서울의 날씨는 어떤가요?"}],
    )
    counted = sdk.messages.count_tokens(**request)
    answered = sdk.messages.create(max_tokens=1, **request)
    assert counted.input_tokens == answered.usage.input_tokens > 0


def test_a_text_document_is_read(sdk):
    document = {
        "type": "document",
        "title": "notes",
        "source": {"type": "text", "media_type": "text/plain", "data": "The code word is BANANA."},
    }
    counted_without = sdk.messages.count_tokens(
        model="local", messages=[{"role": "user", "content": "What is the code word?"}]
    )
    counted = sdk.messages.count_tokens(
        model="local",
        messages=[
            {
                "role": "user",
                "content": [document, {"type": "text", "text": "What is the code word?"}],
            }
        ],
    )
    assert counted.input_tokens > counted_without.input_tokens + 5


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "top_k": 5}, "top_k"),
        (
            {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "made_up": 1},
            "made_up",
        ),
        (
            {
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
                        ],
                    }
                ],
            },
            "messages.0.content.0.source",
        ),
        (
            {
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools.0.type",
        ),
        (
            {
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {
                                    "type": "base64",
                                    "media_type": "application/pdf",
                                    "data": "JVBERi0=",
                                },
                            }
                        ],
                    }
                ],
            },
            "document",
        ),
        (
            {
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
            },
            "context_management.edits.0.type",
        ),
    ],
)
def test_bad_input_is_a_400_in_anthropics_shape_naming_the_field(local_server, body, named):
    reply = httpx.post(
        f"{local_server.url}/v1/messages",
        json={"model": "local", **body},
        headers={"x-api-key": "client-1", "anthropic-version": "2023-06-01"},
    )
    assert reply.status_code == 400
    error = reply.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(named)
    assert reply.headers["request-id"]


def test_errors_raise_the_sdks_own_exceptions(sdk, local_server):
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.create(
            model="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
        )
    assert missing.value.body["error"]["type"] == "not_found_error"
    assert missing.value.request_id
