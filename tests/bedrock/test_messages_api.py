"""The Messages API (`/v1/messages`) on Bedrock models, through the official `anthropic` SDK.

On the emulator (ministack's bedrock-runtime forwarding to the scripted chat server): create and
stream, an alias, tools both ways, what may and may not think. On botocore's Stubber and a paced
event-stream endpoint, what the emulator cannot produce: Claude's thinking and its signature,
carried back in the next turn; cache usage; `max_tokens`, `refusal` and `stop_sequence` stops;
CountTokens; a PDF as a Converse document. Reasoning through the other two APIs, too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import boto3
import httpx
import pytest
from botocore.stub import ANY, Stubber

import anthropic
import openai
from helpers.bedrock import CLAUDE, KNOWN, NOVA, bedrock_app
from helpers.eventstream import StreamEndpoint, event
from helpers.fake_chat import Answer
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.bedrock.provider import BedrockProvider

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def sdk(server) -> anthropic.Anthropic:
    """The SDK as Claude Code's users configure it: the base URL and the tenant's key."""
    return anthropic.Anthropic(base_url=server.url, api_key=KNOWN["X-Api-Key"], max_retries=0)


@pytest.fixture
def aliased(chat) -> Iterator[LiveServer]:
    aliases = f"claude-sonnet-4-5={CLAUDE},claude-haiku-4-5={NOVA}"
    with LiveServer(bedrock_app(model_aliases=aliases)) as live:
        yield live


def test_an_alias_answers_as_the_caller_named_it_and_is_charged_as_the_model(aliased, chat):
    chat.enqueue(Answer(text="안녕하세요, 베드록입니다."))
    message = sdk(aliased).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system="You are brief.",
        messages=[{"role": "user", "content": "안녕?"}],
    )
    assert message.model == "claude-sonnet-4-5"
    assert message.content[0].text == "안녕하세요, 베드록입니다."
    assert message.stop_reason == "end_turn" and message.usage.input_tokens == 11
    sent = chat.seen[-1]
    assert sent["messages"][0] == {"role": "system", "content": "You are brief."}
    usage = httpx.get(f"{aliased.url}/api/v1/usage", headers=KNOWN).json()
    assert [row["model"] for row in usage["by_model"]] == [CLAUDE] and usage["cost_usd"] > 0
    models = openai.OpenAI(
        base_url=f"{aliased.url}/v1", api_key="x", default_headers=KNOWN
    ).models.list()
    assert {"claude-sonnet-4-5", "claude-haiku-4-5"} <= {m.id for m in models.data}


def test_a_stream_on_bedrock(aliased, chat):
    chat.enqueue(Answer(text="스트리밍 답변"))
    with sdk(aliased).messages.stream(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "안녕"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "스트리밍 답변" == final.content[0].text
    assert final.usage.output_tokens == 7


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_tools_both_ways_on_bedrock(server, chat, stream):
    chat.enqueue(Answer(calls=[("get_weather", {"city": "서울"})]), Answer(text="서울은 맑아요."))
    client = sdk(server)
    question = {"role": "user", "content": "서울 날씨?"}

    def ask(messages):
        request = dict(model=NOVA, max_tokens=200, tools=[WEATHER], messages=messages)
        if not stream:
            return client.messages.create(**request)
        with client.messages.stream(**request) as events:
            return events.get_final_message()

    first = ask([question])
    (use,) = first.content
    assert first.stop_reason == "tool_use" and use.input == {"city": "서울"}
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "맑음, 3°C"}
    second = ask(
        [
            question,
            {"role": "assistant", "content": [use.model_dump()]},
            {"role": "user", "content": [result]},
        ]
    )
    assert second.content[0].text == "서울은 맑아요."
    assert chat.seen[-1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": use.id,
        "content": "맑음, 3°C",
    }


def test_what_may_think_on_a_model_that_cannot(server, chat):
    adaptive = sdk(server).messages.create(
        model=NOVA,
        max_tokens=100,
        thinking={"type": "adaptive"},
        output_config={"effort": "medium"},
        messages=[{"role": "user", "content": "hi"}],
    )
    assert [block.type for block in adaptive.content] == ["text"]
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk(server).messages.create(
            model=NOVA,
            max_tokens=4000,
            thinking={"type": "enabled", "budget_tokens": 2000},
            messages=[{"role": "user", "content": "hi"}],
        )
    assert "cannot reason" in refused.value.body["error"]["message"]


# On botocore's Stubber: what the emulator cannot produce.


@pytest.fixture
def stub() -> Iterator[Stubber]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="ap-northeast-2",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def stubbed(stub: Stubber, **overrides) -> LiveServer:
    settings = make_settings(bedrock_models=f"{SONNET},{NOVA}", llm_provider="openai", **overrides)
    bedrock = BedrockProvider(settings.bedrock_model_list(), client=stub.client)
    services = Services.from_settings(
        settings, bedrock=bedrock, openai=FailingProvider(AssertionError("not OpenAI"))
    )
    return LiveServer(create_app(settings, services))


def answer(*blocks, stop="end_turn", **usage) -> dict:
    counts = {"inputTokens": 20, "outputTokens": 30, "totalTokens": 50, **usage}
    return {
        "output": {"message": {"role": "assistant", "content": list(blocks)}},
        "stopReason": stop,
        "usage": counts,
        "metrics": {"latencyMs": 10},
    }


THOUGHT = {
    "reasoningContent": {"reasoningText": {"text": "Paris is in France.", "signature": "sig-abc"}}
}


def test_claudes_thinking_comes_back_signed_and_goes_back_with_the_next_turn(stub):
    """Claude refuses a tool loop that drops its signed thinking: it goes back as it came."""
    use = {"toolUse": {"toolUseId": "tu-1", "name": "get_weather", "input": {"city": "Paris"}}}
    expected_first = {
        "modelId": SONNET,
        "messages": ANY,
        "inferenceConfig": {"maxTokens": 4096},  # no temperature: Claude thinks at its own
        "toolConfig": ANY,
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 2048}},
    }
    stub.add_response("converse", answer(THOUGHT, use, stop="tool_use"), expected_first)
    with stubbed(stub) as server:
        client = sdk(server)
        question = {"role": "user", "content": "Weather in Paris?"}
        thinking = {"type": "enabled", "budget_tokens": 2048}
        first = client.messages.create(
            model=SONNET, max_tokens=4096, thinking=thinking, tools=[WEATHER], messages=[question]
        )
        think, call = first.content
        assert think.type == "thinking" and think.thinking == "Paris is in France."
        assert think.signature and call.type == "tool_use" and first.stop_reason == "tool_use"
        sent_back = [
            {"type": "thinking", "thinking": think.thinking, "signature": think.signature},
            call.model_dump(),
        ]
        result = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}
        expected_second = {
            **expected_first,
            "messages": [
                {"role": "user", "content": [{"text": "Weather in Paris?"}]},
                {
                    "role": "assistant",
                    "content": [THOUGHT, use],
                },
                {
                    "role": "user",
                    "content": [
                        {"toolResult": {"toolUseId": "tu-1", "content": [{"text": "Sunny"}]}}
                    ],
                },
            ],
        }
        stub.add_response("converse", answer({"text": "Sunny in Paris."}), expected_second)
        second = client.messages.create(
            model=SONNET,
            max_tokens=4096,
            thinking=thinking,
            tools=[WEATHER],
            messages=[
                question,
                {"role": "assistant", "content": sent_back},
                {"role": "user", "content": [result]},
            ],
        )
    assert second.content[0].text == "Sunny in Paris."


def test_display_omitted_keeps_the_signature_and_hides_the_text(stub):
    stub.add_response("converse", answer(THOUGHT, {"text": "Paris."}))
    with stubbed(stub) as server:
        message = sdk(server).messages.create(
            model=SONNET,
            max_tokens=4096,
            thinking={"type": "adaptive", "display": "omitted"},
            messages=[{"role": "user", "content": "Capital of France?"}],
        )
    think, text = message.content
    assert think.thinking == "" and think.signature and text.text == "Paris."


@pytest.mark.parametrize(
    ("stop", "fields", "reason", "sequence"),
    [
        ("max_tokens", None, "max_tokens", None),
        ("guardrail_intervened", None, "refusal", None),
        ("stop_sequence", {"stop_sequence": "END"}, "stop_sequence", None),
    ],
)
def test_stop_reasons_in_anthropics_words(stub, stop, fields, reason, sequence):
    reply = answer({"text": "cut"}, stop=stop)
    if fields:
        reply["additionalModelResponseFields"] = fields
    stub.add_response("converse", reply)
    with stubbed(stub) as server:
        message = sdk(server).messages.create(
            model=SONNET,
            max_tokens=100,
            stop_sequences=["END"],
            messages=[{"role": "user", "content": "count"}],
        )
    assert message.stop_reason == reason


def test_cache_control_becomes_cache_points_and_cache_usage_comes_back(stub):
    expected = {
        "modelId": SONNET,
        "system": [{"text": "Long instructions."}, {"cachePoint": {"type": "default"}}],
        "messages": [
            {"role": "user", "content": [{"text": "hi"}, {"cachePoint": {"type": "default"}}]}
        ],
        "inferenceConfig": ANY,
    }
    reply = answer({"text": "hello"}, cacheReadInputTokens=1000, cacheWriteInputTokens=200)
    stub.add_response("converse", reply, expected)
    with stubbed(stub) as server:
        message = sdk(server).messages.create(
            model=SONNET,
            max_tokens=100,
            system=[
                {
                    "type": "text",
                    "text": "Long instructions.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}
                    ],
                }
            ],
        )
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens) == (20, 1000)
    assert usage.cache_creation_input_tokens == 200


def test_count_tokens_is_bedrocks_count_for_claude(stub):
    stub.add_response(
        "count_tokens",
        {"inputTokens": 1234},
        {"modelId": "anthropic.claude-sonnet-4-5-20250929-v1:0", "input": ANY},
    )
    with stubbed(stub) as server:
        counted = sdk(server).messages.count_tokens(
            model=SONNET, messages=[{"role": "user", "content": "안녕하세요"}]
        )
        estimated = sdk(server).messages.count_tokens(
            model=NOVA, messages=[{"role": "user", "content": "안녕하세요 " * 100}]
        )
    assert counted.input_tokens == 1234
    assert estimated.input_tokens > 400  # no CountTokens for Nova: the estimate grows with it


def test_a_pdf_reaches_claude_as_a_document(stub):
    pdf = b"%PDF-1.4 a tiny document"
    expected = {
        "modelId": SONNET,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "Summarise it."},
                    {
                        "document": {
                            "format": "pdf",
                            "name": "report 2026",
                            "source": {"bytes": pdf},
                        }
                    },
                ],
            }
        ],
        "inferenceConfig": ANY,
    }
    stub.add_response("converse", answer({"text": "A report."}), expected)
    document = {
        "type": "document",
        "title": "report_2026!",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(pdf).decode(),
        },
    }
    with stubbed(stub) as server:
        message = sdk(server).messages.create(
            model=SONNET,
            max_tokens=100,
            messages=[
                {"role": "user", "content": [document, {"type": "text", "text": "Summarise it."}]}
            ],
        )
    assert message.content[0].text == "A report."


def thinking_stream() -> list[bytes]:
    return [
        event("messageStart", {"role": "assistant"}),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Let me "}}},
        ),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "think."}}},
        ),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig-xyz"}}},
        ),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Forty-two."}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "end_turn"}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": 9, "outputTokens": 12, "totalTokens": 21},
                "metrics": {"latencyMs": 3},
            },
        ),
    ]


def streamed_server(endpoint: StreamEndpoint) -> LiveServer:
    client = boto3.client(
        "bedrock-runtime",
        region_name="ap-northeast-2",
        endpoint_url=endpoint.url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    settings = make_settings(bedrock_models=SONNET, llm_provider="openai")
    services = Services.from_settings(
        settings,
        bedrock=BedrockProvider([SONNET], client=client),
        openai=FailingProvider(AssertionError("not OpenAI")),
    )
    return LiveServer(create_app(settings, services))


def test_streamed_thinking_in_each_apis_own_form():
    with StreamEndpoint(thinking_stream()) as endpoint, streamed_server(endpoint) as server:
        with sdk(server).messages.stream(
            model=SONNET,
            max_tokens=4096,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "The answer?"}],
        ) as stream:
            kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in stream]
            message = stream.get_final_message()
        chat = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", default_headers=KNOWN)
        chunks = list(
            chat.chat.completions.create(
                model=SONNET,
                messages=[{"role": "user", "content": "The answer?"}],
                reasoning_effort="low",
                max_completion_tokens=4000,
                stream=True,
            )
        )
        events = list(
            chat.responses.create(
                model=SONNET,
                input="The answer?",
                reasoning={"effort": "low"},
                include=["reasoning.encrypted_content"],
                max_output_tokens=4000,
                stream=True,
                store=False,
            )
        )
    think, text = message.content
    assert (think.thinking, text.text) == ("Let me think.", "Forty-two.") and think.signature
    assert ("content_block_delta", "thinking_delta") in kinds
    assert ("content_block_delta", "signature_delta") in kinds
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert reasoning == "Let me think." and "".join(d.content or "" for d in deltas) == "Forty-two."
    blocks = [b for d in deltas for b in (getattr(d, "thinking_blocks", None) or ())]
    assert blocks and blocks[0]["signature"] == think.signature
    final = events[-1].response
    item, said = final.output
    assert item.type == "reasoning" and item.content[0].text == "Let me think."
    assert item.encrypted_content == think.signature and said.type == "message"
    streamed = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert streamed == "Let me think."
    added = {e.output_index: e.item.type for e in events if e.type == "response.output_item.added"}
    done = {e.output_index: e.item.type for e in events if e.type == "response.output_item.done"}
    assert added == done == {0: "reasoning", 1: "message"}


def test_chat_completions_carry_thinking_back_as_thinking_blocks(stub):
    """LiteLLM's shape: `thinking_blocks` on the reply, sent back on the assistant message."""
    use = {"toolUse": {"toolUseId": "tu-1", "name": "get_weather", "input": {"city": "Paris"}}}
    stub.add_response("converse", answer(THOUGHT, use, stop="tool_use"))
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": WEATHER["input_schema"]},
    }
    with stubbed(stub) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", default_headers=KNOWN)
        first = client.chat.completions.create(
            model=SONNET,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[tool],
            reasoning_effort="low",
            max_completion_tokens=4000,
        )
        message = first.choices[0].message.model_dump(exclude_none=True)
        assert message["reasoning_content"] == "Paris is in France."
        stub.add_response(
            "converse",
            answer({"text": "Sunny."}),
            {
                "modelId": SONNET,
                "messages": [
                    ANY,
                    {"role": "assistant", "content": [THOUGHT, use]},
                    ANY,
                ],
                "inferenceConfig": ANY,
                "toolConfig": ANY,
                "additionalModelRequestFields": ANY,
            },
        )
        result = {"role": "tool", "tool_call_id": "tu-1", "content": "Sunny"}
        second = client.chat.completions.create(
            model=SONNET,
            messages=[{"role": "user", "content": "Weather in Paris?"}, message, result],
            tools=[tool],
            reasoning_effort="low",
            max_completion_tokens=4000,
        )
    assert second.choices[0].message.content == "Sunny."
