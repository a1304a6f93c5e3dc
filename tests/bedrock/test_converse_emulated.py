"""A Bedrock model through every API, whole and streamed, tools both ways, on the emulator.

The official `openai` SDK and plain HTTP against our server; our server calls ministack's
bedrock-runtime with boto3; ministack forwards to the scripted chat server and frames the answer
as Converse (ConverseStream: the real event-stream encoding).
"""

from __future__ import annotations

import json

import httpx
import pytest

import openai
from helpers.bedrock import CLAUDE, KNOWN, NOVA, bedrock_app
from helpers.fake_chat import Answer
from helpers.live_server import LiveServer

KOREAN = "서울의 날씨는 어떤가요?"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather now in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def sdk(server) -> openai.OpenAI:
    """The SDK as a known client uses it: our base URL, its client key in X-Api-Key."""
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="EMPTY", default_headers=KNOWN, max_retries=0
    )


def test_chat_completions_answers_in_korean_from_a_bedrock_model(server, chat):
    answer = sdk(server).chat.completions.create(
        model=NOVA,
        messages=[
            {"role": "system", "content": "한국어로 답하세요."},
            {"role": "user", "content": KOREAN},
        ],
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        stop=["끝"],
    )
    assert answer.choices[0].message.content == f"echo: {KOREAN}"
    assert answer.model == NOVA and answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 7)
    sent = chat.seen[-1]  # what reached Bedrock, as ministack read our Converse call
    assert sent["model"] == NOVA
    assert sent["messages"] == [
        {"role": "system", "content": "한국어로 답하세요."},
        {"role": "user", "content": KOREAN},
    ]
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (64, 0.2, 0.9)
    assert sent["stop"] == ["끝"]


def test_chat_completions_streams_a_bedrock_reply_with_usage_at_the_end(server, chat):
    chunks = list(
        sdk(server).chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": KOREAN * 3}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"echo: {KOREAN * 3}"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    assert chunks[-1].usage.total_tokens == 18
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_responses_api_answers_whole_and_streamed(server, chat):
    client = sdk(server)
    whole = client.responses.create(model=NOVA, input=KOREAN, instructions="짧게 답하세요.")
    assert whole.output_text == f"echo: {KOREAN}" and whole.model == NOVA
    assert chat.seen[-1]["messages"][0] == {"role": "system", "content": "짧게 답하세요."}
    events = list(client.responses.create(model=NOVA, input=KOREAN, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == f"echo: {KOREAN}"
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.total_tokens == 18


def test_native_chat_answers_on_the_servers_account(server, chat):
    reply = httpx.post(
        f"{server.url}/api/v1/chat",
        json={"user_message": KOREAN, "model": NOVA, "role": "여행 안내원"},
        headers=KNOWN,
        timeout=30,
    )
    body = reply.json()
    assert reply.status_code == 200, body
    assert body["response_text"] == f"echo: {KOREAN}"
    assert (body["model"], body["api_key_source"], body["success"]) == (NOVA, "server", True)
    assert (body["input_tokens"], body["output_tokens"], body["total_tokens_used"]) == (11, 7, 18)
    assert "여행 안내원" in chat.seen[-1]["messages"][0]["content"]  # the composed system prompt


def test_native_chat_streams_from_bedrock(server, chat):
    with httpx.stream(
        "POST",
        f"{server.url}/api/v1/chat",
        json={"user_message": KOREAN * 3, "model": CLAUDE, "stream": True},
        headers=KNOWN,
        timeout=30,
    ) as reply:
        assert reply.status_code == 200
        data = [json.loads(line[5:]) for line in reply.iter_lines() if line.startswith("data:")]
    text = "".join(event["text"] for event in data[:-1])  # `delta` events, then `done`
    assert text == f"echo: {KOREAN * 3}" and len(data) > 2
    assert data[-1]["response_text"] == text
    assert data[-1]["model"] == CLAUDE and data[-1]["api_key_source"] == "server"


def test_parallel_tool_calls_come_back_all_and_their_results_go_up(server, chat):
    chat.enqueue(
        Answer(calls=[("get_weather", {"city": "서울"}), ("get_weather", {"city": "부산"})])
    )
    client = sdk(server)
    question = [{"role": "user", "content": "서울과 부산의 날씨는?"}]
    first = client.chat.completions.create(model=NOVA, messages=question, tools=[WEATHER])
    calls = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "서울"}, {"city": "부산"}]
    offered = chat.seen[-1]["tools"][0]["function"]
    assert (
        offered["name"] == "get_weather"
        and offered["parameters"] == WEATHER["function"]["parameters"]
    )
    chat.enqueue(Answer(text="서울은 맑고 부산은 비가 옵니다."))
    results = [
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": f"{city}: 맑음" if i == 0 else f"{city}: 비",
        }
        for i, (call, city) in enumerate(zip(calls, ["서울", "부산"], strict=True))
    ]
    second = client.chat.completions.create(
        model=NOVA,
        messages=[*question, first.choices[0].message.model_dump(exclude_none=True), *results],
        tools=[WEATHER],
    )
    assert second.choices[0].message.content == "서울은 맑고 부산은 비가 옵니다."
    upstream = chat.seen[-1]["messages"]
    assert [m["role"] for m in upstream] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in upstream[1]["tool_calls"]] == [c.id for c in calls]
    assert [m["content"] for m in upstream[2:]] == ["서울: 맑음", "부산: 비"]


def test_a_named_tool_choice_is_forced_and_a_streamed_call_arrives_whole(server, chat):
    chat.enqueue(Answer(calls=[("get_weather", {"city": "제주"})]))
    stream = sdk(server).chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": "제주 날씨"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    chunks = list(stream)
    calls = [
        c for chunk in chunks if chunk.choices for c in chunk.choices[0].delta.tool_calls or ()
    ]
    assert calls[0].function.name == "get_weather"
    assert json.loads("".join(c.function.arguments or "" for c in calls)) == {"city": "제주"}
    assert chat.seen[-1]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_responses_api_tools_both_ways(server, chat):
    client = sdk(server)
    tool = {"type": "function", **WEATHER["function"]}
    chat.enqueue(Answer(calls=[("get_weather", {"city": "서울"})]))
    first = client.responses.create(
        model=NOVA, input="서울 날씨?", tools=[tool], tool_choice="required"
    )
    call = next(item for item in first.output if item.type == "function_call")
    assert json.loads(call.arguments) == {"city": "서울"}
    assert chat.seen[-1]["tool_choice"] == "required"
    chat.enqueue(Answer(text="맑음입니다."))
    second = client.responses.create(
        model=NOVA,
        input=[
            {"role": "user", "content": "서울 날씨?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "맑음, 3°C"},
        ],
        tools=[tool],
    )
    assert second.output_text == "맑음입니다."
    tool_turn = chat.seen[-1]["messages"][-1]
    assert tool_turn == {"role": "tool", "tool_call_id": call.call_id, "content": "맑음, 3°C"}


def test_tool_turns_without_tools_offered_go_up_as_text(server, chat):
    """Converse refuses toolUse blocks without a toolConfig, and has no tool_choice none."""
    messages = [
        {"role": "user", "content": "날씨?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "맑음"},
        {"role": "user", "content": "요약해 주세요"},
    ]
    sdk(server).chat.completions.create(model=NOVA, messages=messages)
    sent = chat.seen[-1]
    assert "tools" not in sent
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert (
        "get_weather" in sent["messages"][1]["content"] and "맑음" in sent["messages"][2]["content"]
    )


def test_structured_output_is_a_forced_answer_tool(server, chat):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    chat.enqueue(Answer(calls=[("city", {"city": "서울"})]))
    answer = sdk(server).chat.completions.create(
        model=NOVA,
        messages=[{"role": "user", "content": "한국의 수도는?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    assert json.loads(answer.choices[0].message.content) == {"city": "서울"}
    assert answer.choices[0].finish_reason == "stop"
    sent = chat.seen[-1]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "city"}}
    assert sent["tools"][0]["function"]["parameters"] == schema


def test_models_lists_the_bedrock_models_and_refuses_others(server, chat):
    client = sdk(server)
    listed = {m.id: m.owned_by for m in client.models.list()}
    assert listed[NOVA] == "bedrock" and listed[CLAUDE] == "bedrock"
    assert client.models.retrieve(NOVA).owned_by == "bedrock"
    for unlisted in ("us.amazon.nova-pro-v1:0", "meta.llama3-8b-instruct-v1:0"):
        with pytest.raises(openai.NotFoundError) as raised:
            client.chat.completions.create(
                model=unlisted, messages=[{"role": "user", "content": "hi"}]
            )
        assert raised.value.code == "model_not_found"
    assert chat.seen == []  # nothing went to Bedrock


def test_anonymous_callers_get_401_and_nothing_is_spent(server, chat):
    anonymous = openai.OpenAI(base_url=f"{server.url}/v1", api_key="EMPTY", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        anonymous.chat.completions.create(model=NOVA, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "client_credential_required"
    native = httpx.post(
        f"{server.url}/api/v1/chat", json={"user_message": "hi", "model": NOVA}, timeout=30
    )
    assert native.status_code == 401 and native.json()["error"]["param"] == "X-Api-Key"
    assert chat.seen == []


def test_bedrock_counts_against_the_free_mode_quotas_without_free_mode(chat):
    with LiveServer(bedrock_app(free_mode_requests_per_minute=2)) as live:
        client = sdk(live)
        for _ in range(2):
            client.chat.completions.create(model=NOVA, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model=NOVA, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.response.headers["Retry-After"]
    assert len(chat.seen) == 2


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"seed": 7}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_what_bedrock_has_not_is_refused_by_name(server, chat, extra, param):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(server).chat.completions.create(
            model=NOVA, messages=[{"role": "user", "content": "hi"}], **extra
        )
    assert raised.value.body["param"] == param
    assert chat.seen == []


def test_a_remote_image_is_refused_by_name(server, chat):
    content = [
        {"type": "text", "text": "이 그림은?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(server).chat.completions.create(
            model=CLAUDE, messages=[{"role": "user", "content": content}]
        )
    assert raised.value.body["param"] == "image_url"
    assert "fetches nothing" in raised.value.body["message"]
    assert chat.seen == []


def test_a_streamed_tool_call_carries_no_empty_text(server, chat):
    """ConverseStream opens an empty text block before a toolUse: it is not output. It gave
    chat completions an extra `content: ""` delta (an empty text part in the AI SDK)."""
    chat.enqueue(Answer(calls=[("get_weather", {"city": "서울"})]))
    chunks = list(
        sdk(server).chat.completions.create(
            model=NOVA, messages=[{"role": "user", "content": KOREAN}], tools=[WEATHER], stream=True
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert [d.content for d in deltas if d.content is not None] == []
    assert deltas[0].role == "assistant" and deltas[0].tool_calls
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_streamed_responses_tool_call_frames_every_item_it_adds(server, chat):
    """The empty block added a message item at output_index 0 that was never done, while the
    function call reused index 0: `response.completed` did not match the events."""
    chat.enqueue(Answer(calls=[("get_weather", {"city": "서울"})]))
    tool = {"type": "function", **WEATHER["function"]}
    events = list(sdk(server).responses.create(model=NOVA, input=KOREAN, tools=[tool], stream=True))
    added = {e.output_index: e.item.type for e in events if e.type == "response.output_item.added"}
    done = {e.output_index: e.item for e in events if e.type == "response.output_item.done"}
    final = events[-1].response
    assert added == {0: "function_call"} and set(done) == {0}
    assert [item.model_dump() for item in final.output] == [done[0].model_dump()]
    assert not [e for e in events if e.type == "response.output_text.delta"]


def test_text_before_a_call_keeps_its_own_item(server, chat):
    chat.enqueue(Answer(text="확인해 볼게요.", calls=[("get_weather", {"city": "서울"})]))
    tool = {"type": "function", **WEATHER["function"]}
    events = list(sdk(server).responses.create(model=NOVA, input=KOREAN, tools=[tool], stream=True))
    added = {e.output_index: e.item.type for e in events if e.type == "response.output_item.added"}
    done = {e.output_index: e.item.type for e in events if e.type == "response.output_item.done"}
    assert added == done == {0: "message", 1: "function_call"}
    assert [item.type for item in events[-1].response.output] == ["message", "function_call"]


CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_tools_and_a_structured_output_together_on_chat_completions(server, chat, stream):
    """The Agents SDK, instructor and the AI SDK send tools and a typed result together: the
    model calls a tool, then answers through the answer tool, whose input is the JSON reply."""
    client = sdk(server)
    format_ = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}}
    question = [{"role": "user", "content": "날씨가 맑은 도시는?"}]

    def ask(messages):
        request = dict(model=NOVA, messages=messages, tools=[WEATHER], response_format=format_)
        if not stream:
            return client.chat.completions.create(**request).choices[0]
        with client.chat.completions.stream(**request) as events:
            return events.get_final_completion().choices[0]

    chat.enqueue(Answer(calls=[("get_weather", {"city": "서울"})]))
    first = ask(question)
    assert first.finish_reason == "tool_calls"
    (call,) = first.message.tool_calls
    offered = {t["function"]["name"] for t in chat.seen[-1]["tools"]}
    assert offered == {"get_weather", "city"} and chat.seen[-1]["tool_choice"] == "required"
    chat.enqueue(Answer(calls=[("city", {"city": "서울"})]))
    result = {"role": "tool", "tool_call_id": call.id, "content": "서울: 맑음"}
    second = ask([*question, first.message.model_dump(exclude_none=True), result])
    assert second.finish_reason == "stop" and not second.message.tool_calls
    assert json.loads(second.message.content) == {"city": "서울"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_tools_and_a_structured_output_together_on_responses(server, chat, stream):
    client = sdk(server)
    tool = {"type": "function", **WEATHER["function"]}
    text = {"format": {"type": "json_schema", "name": "city", "schema": CITY}}

    def ask(items):
        request = dict(model=NOVA, input=items, tools=[tool], text=text, store=False)
        if not stream:
            return client.responses.create(**request)
        return list(client.responses.create(stream=True, **request))[-1].response

    chat.enqueue(Answer(calls=[("get_weather", {"city": "서울"})]))
    first = ask("날씨가 맑은 도시는?")
    (call,) = [item for item in first.output if item.type == "function_call"]
    chat.enqueue(Answer(calls=[("city", {"city": "서울"})]))
    second = ask(
        [
            {"role": "user", "content": "날씨가 맑은 도시는?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "서울: 맑음"},
        ]
    )
    assert [item.type for item in second.output] == ["message"]
    assert json.loads(second.output_text) == {"city": "서울"}
