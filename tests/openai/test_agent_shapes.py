"""What agent frameworks send the local model, through the official SDK: strict JSON that always
parses, tools together with a structured output, no template markup in text, stream deltas as
OpenAI writes them. Properties are checked over many seeds and temperatures, not one sample.
"""

import json

import httpx
import jsonschema
import pytest

import openai
from helpers.openai_app import openai_app_server, post_v1

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
STRICT = {"type": "json_schema", "json_schema": {"name": "place", "schema": CITY, "strict": True}}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SAMPLES = [(seed, temperature) for seed in range(8) for temperature in (0.8, 1.3, 2.0)]


@pytest.fixture
def sdk(local_server):
    with openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0) as c:
        yield c


@pytest.mark.parametrize(("seed", "temperature"), SAMPLES)
def test_strict_json_schema_output_always_parses_and_validates(sdk, seed, temperature):
    """A sampled reply once held a raw newline inside a string: not JSON."""
    reply = sdk.chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Where is the Eiffel Tower? Answer in detail."}],
        response_format=STRICT,
        max_tokens=120,
        temperature=temperature,
        seed=seed,
    )
    text = reply.choices[0].message.content
    assert not any(ord(c) < 0x20 for c in text.strip()), repr(text)  # none, even in a prefix
    if reply.choices[0].finish_reason == "stop":
        jsonschema.validate(json.loads(text), CITY)


def test_tools_with_a_structured_output_and_a_forced_call_give_the_call(sdk):
    reply = sdk.chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "파리 날씨를 알려 주세요"}],
        tools=[WEATHER],
        tool_choice="required",
        response_format=STRICT,
        max_tokens=80,
        temperature=0,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)


@pytest.mark.parametrize("seed", range(6))
def test_tools_with_a_structured_output_on_auto_give_a_call_or_valid_json(sdk, seed):
    reply = sdk.chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Where is the Colosseum?"}],
        tools=[WEATHER],
        response_format=STRICT,
        max_tokens=80,
        temperature=1.0,
        seed=seed,
    )
    choice = reply.choices[0]
    if choice.finish_reason == "tool_calls":
        assert choice.message.tool_calls[0].function.name == "get_weather"
    elif choice.finish_reason == "stop":
        jsonschema.validate(json.loads(choice.message.content), CITY)


def test_the_responses_api_takes_tools_and_text_format_together(local_server):
    body = {
        "model": LOCAL,
        "input": "What is the capital of Italy?",
        "tools": [{"type": "function", **WEATHER["function"]}],
        "text": {"format": {"type": "json_schema", "name": "place", "schema": CITY}},
        "max_output_tokens": 80,
        "temperature": 0,
    }
    response = httpx.post(f"{local_server.url}/v1/responses", json=body, timeout=120)
    assert response.status_code == 200, response.text  # was a 400 naming response_format
    item = response.json()["output"][0]
    if item["type"] == "message":
        jsonschema.validate(json.loads(item["content"][0]["text"]), CITY)
    else:
        assert item["type"] == "function_call" and item["name"] == "get_weather"


def history_with_a_call():
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Seoul"}'},
    }
    return [
        {"role": "user", "content": "서울 날씨?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
        {"role": "user", "content": "And in Busan?"},
    ]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tools", ["none", "no tools"])
def test_a_text_reply_never_holds_tool_call_markup(sdk, seed, tools):
    """After a tool round the model copied `<tool_call>...` into its text answer."""
    extra = {"tools": [WEATHER], "tool_choice": "none"} if tools == "none" else {}
    reply = sdk.chat.completions.create(
        model=LOCAL,
        messages=history_with_a_call(),
        max_tokens=60,
        temperature=1.0,
        seed=seed,
        **extra,
    )
    text = reply.choices[0].message.content or ""
    assert "<tool_call" not in text and "</tool_call>" not in text


def test_a_streamed_tool_call_opens_with_null_content(local_server):
    body = {
        "model": LOCAL,
        "messages": [{"role": "user", "content": "Weather in Rome?"}],
        "tools": [WEATHER],
        "tool_choice": "required",
        "max_tokens": 60,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{local_server.url}/v1/chat/completions", json=body, timeout=120
    ) as stream:
        deltas = [
            json.loads(line[6:])["choices"][0]["delta"]
            for line in stream.iter_lines()
            if line.startswith("data: {")
        ]
    first = deltas[0]
    assert first["role"] == "assistant"
    assert "content" in first and first["content"] is None  # was "", an empty text part
    assert first["tool_calls"][0]["function"]["name"] == "get_weather"
    assert not any(delta.get("content") == "" for delta in deltas)


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_tools_with_a_structured_output_reach_openai_together(fake, path):
    """On the OpenAI provider both go to the Responses API, which decides as OpenAI does."""
    if path == "/responses":
        tool = {"type": "function", **WEATHER["function"]}
        fmt = {"text": {"format": {"type": "json_schema", "name": "place", "schema": CITY}}}
        body = {"model": "gpt-4o-mini", "input": "Where is the Colosseum?", "tools": [tool], **fmt}
    else:
        messages = [{"role": "user", "content": "Where is the Colosseum?"}]
        body = {"model": "gpt-4o-mini", "messages": messages, "tools": [WEATHER]}
        body["response_format"] = STRICT
    with openai_app_server(fake) as server:
        response = post_v1(server, path, body, "sk-agents-" + "a" * 40)
    assert response.status_code == 200, response.text
    sent = fake.seen[-1].body
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["text"]["format"]["type"] == "json_schema"
    assert sent["text"]["format"]["schema"] == CITY


def test_tools_with_a_structured_output_streamed_on_both_apis(sdk):
    chat = sdk.chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],
        tool_choice="required",
        response_format=STRICT,
        max_tokens=80,
        temperature=0,
        stream=True,
    )
    calls = [c for chunk in chat for c in (chunk.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"
    events = sdk.responses.create(
        model=LOCAL,
        input="Where is the Louvre?",
        tools=[{"type": "function", **WEATHER["function"]}],
        text={"format": {"type": "json_schema", "name": "place", "schema": CITY}},
        max_output_tokens=80,
        temperature=0,
        stream=True,
    )
    done = [event for event in events if event.type == "response.completed"]
    item = done[0].response.output[0]
    if item.type == "message":
        jsonschema.validate(json.loads(item.content[0].text), CITY)
    else:
        assert item.type == "function_call" and item.name == "get_weather"
