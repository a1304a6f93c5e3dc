"""Tool calling through the official SDK: on the local model, and through to a Responses API.

Round trips as users write them: the model calls a tool, the caller runs it and sends the
result back (`role: "tool"` / `function_call_output`), the model answers.
"""

import json

import jsonschema
import openresponses_types as ort
import pytest

import openai
from helpers.openai_app import openai_app_server, post_v1
from helpers.openai_spec import validate

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
CALLER_KEY = "sk-tools-" + "t" * 40
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather now", "parameters": WEATHER},
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Time in a timezone",
            "parameters": {
                "type": "object",
                "properties": {"tz": {"type": "string"}},
                "required": ["tz"],
            },
        },
    },
]
RESPONSES_TOOLS = [{"type": "function", **tool["function"]} for tool in CHAT_TOOLS]
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in CHAT_TOOLS}
ASK = [{"role": "user", "content": "서울 날씨 어때?"}]


def valid_call(name, arguments):
    """A call of an offered function whose arguments validate against its schema."""
    jsonschema.validate(json.loads(arguments), SCHEMAS[name])
    return name


@pytest.fixture
def sdk(local_server):
    with openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0) as c:
        yield c


@pytest.fixture
def upstream_server(fake):
    with openai_app_server(fake) as server:
        yield server


@pytest.fixture
def upstream(upstream_server):
    url = f"{upstream_server.url}/v1"
    with openai.OpenAI(base_url=url, api_key=CALLER_KEY, max_retries=0) as client:
        yield client


def round_trip(client, model, choice):
    """Call → tool result → answer, by Chat Completions; the two completions."""
    first = client.chat.completions.create(
        model=model,
        messages=ASK,
        tools=CHAT_TOOLS,
        max_tokens=100,
        temperature=0,
        tool_choice=choice,
    )
    call = first.choices[0].message.tool_calls[0]
    followed = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 3, "unit": "c"}'},
    ]
    second = client.chat.completions.create(
        model=model, messages=followed, tools=CHAT_TOOLS, max_tokens=30, temperature=0
    )
    return first, second


@pytest.mark.model
def test_the_local_model_calls_the_named_tool_and_answers_its_result(sdk):
    choice = {"type": "function", "function": {"name": "get_weather"}}
    first, second = round_trip(sdk, LOCAL, choice)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.content is None
    assert valid_call(message.tool_calls[0].function.name, message.tool_calls[0].function.arguments)
    assert message.tool_calls[0].function.name == "get_weather"
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls
    validate(first.model_dump(exclude_unset=True), "CreateChatCompletionResponse")


@pytest.mark.model
def test_required_calls_one_of_the_tools_and_auto_is_always_well_formed(sdk):
    forced = sdk.chat.completions.create(
        model=LOCAL,
        messages=ASK,
        tools=CHAT_TOOLS,
        tool_choice="required",
        max_tokens=100,
        temperature=0,  # greedy, and read from scratch: the same reply whatever ran before
    )
    assert forced.choices[0].message.tool_calls, forced
    call = forced.choices[0].message.tool_calls[0].function
    assert valid_call(call.name, call.arguments) in SCHEMAS
    for seed in range(3):
        free = sdk.chat.completions.create(
            model=LOCAL, messages=ASK, tools=CHAT_TOOLS, max_tokens=100, seed=seed
        )
        message = free.choices[0].message
        if free.choices[0].finish_reason == "length":  # cut short: no call, and said so
            assert not message.tool_calls
        elif message.tool_calls:
            assert free.choices[0].finish_reason == "tool_calls"
            valid_call(
                message.tool_calls[0].function.name, message.tool_calls[0].function.arguments
            )
        else:
            assert message.content and "<tool_call>" not in message.content


@pytest.mark.model
def test_a_streamed_tool_call_arrives_in_deltas_the_sdk_assembles(sdk):
    with sdk.chat.completions.stream(
        model=LOCAL,
        messages=ASK,
        tools=CHAT_TOOLS,
        tool_choice="required",
        max_tokens=100,
        temperature=0,
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0].function
    assert final.choices[0].finish_reason == "tool_calls" and valid_call(call.name, call.arguments)


@pytest.mark.model
def test_responses_function_call_and_its_output_on_the_local_model(sdk):
    raw = sdk.responses.with_raw_response.create(
        model=LOCAL,
        input="서울 날씨 어때?",
        tools=RESPONSES_TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=100,
        temperature=0,
    )
    first = raw.parse()
    call = next(item for item in first.output if item.type == "function_call")
    assert valid_call(call.name, call.arguments) == "get_weather"
    ort.ResponseResource.model_validate_json(raw.http_response.text, strict=True)
    validate(raw.http_response.json(), "Response")
    second = sdk.responses.create(
        model=LOCAL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "3°C"}],
        max_output_tokens=30,
        temperature=0,  # sampled at the default 0.7, the small model's reply was at times empty
    )
    assert second.output_text and second.previous_response_id == first.id


@pytest.mark.model
def test_a_streamed_function_call_follows_the_spec(sdk):
    with sdk.responses.stream(
        model=LOCAL,
        input=ASK,
        tools=RESPONSES_TOOLS,
        tool_choice="required",
        max_output_tokens=100,
        temperature=0,
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    call = final.output[-1]
    assert call.type == "function_call" and valid_call(call.name, call.arguments)


def test_tools_reach_the_responses_api_and_calls_come_back(upstream, fake):
    choice = {"type": "function", "function": {"name": "get_weather"}}
    first, second = round_trip(upstream, "gpt-4o-mini", choice)
    call = first.choices[0].message.tool_calls[0]
    assert call.id == "call_fake1" and json.loads(call.function.arguments)["unit"] == "c"
    sent = fake.seen[0].body
    assert sent["tools"][0] == {
        "type": "function",
        "name": "get_weather",
        "description": "Weather now",
        "parameters": WEATHER,
        "strict": False,
    }
    assert sent["tool_choice"] == {"type": "function", "name": "get_weather"}
    back = fake.seen[1].body["input"]
    assert back[-2] == {
        "type": "function_call",
        "call_id": "call_fake1",
        "name": "get_weather",
        "arguments": call.function.arguments,
    }
    assert back[-1]["type"] == "function_call_output" and back[-1]["call_id"] == "call_fake1"
    assert second.choices[0].message.content.startswith("echo: the tool said")


def test_streamed_tool_calls_through_to_openai(upstream):
    with upstream.chat.completions.stream(
        model="gpt-4o-mini", messages=ASK, tools=CHAT_TOOLS, tool_choice="required"
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    with upstream.responses.stream(
        model="gpt-4o-mini", input=ASK, tools=RESPONSES_TOOLS, parallel_tool_calls=False
    ) as stream:
        response = stream.get_final_response()
    assert response.output[0].type == "function_call" and response.parallel_tool_calls is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools.0.type"),
        (
            {"tools": CHAT_TOOLS, "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"messages": [*ASK, {"role": "tool", "content": "3°C"}]}, "messages.1.tool_call_id"),
    ],
)
def test_malformed_tool_requests_are_400s_naming_the_field(upstream_server, fake, body, param):
    answer = post_v1(
        upstream_server,
        "/chat/completions",
        {"model": "gpt-4o-mini", "messages": ASK, **body},
        CALLER_KEY,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param and not fake.seen


def test_input_items_must_be_whole(upstream_server, fake):
    body = {
        "model": "gpt-4o-mini",
        "input": [*ASK, {"type": "function_call_output", "output": "x"}],
    }
    answer = post_v1(upstream_server, "/responses", body, CALLER_KEY)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "input.1.call_id" and not fake.seen


@pytest.mark.model
@pytest.mark.parametrize(
    "schema",
    [
        {"type": "unknowntype"},
        {"$ref": "#/nowhere"},
        {"$ref": "http://169.254.169.254/latest"},
        {"type": "string", "pattern": "("},
        {"type": "array", "minItems": 100_000_000, "items": {"type": "string"}},
    ],
)
def test_a_schema_the_local_grammar_cannot_follow_is_a_400(local_server, schema):
    """Never a 500, and never a grammar so large it holds the one model worker."""
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    for extra, param in (
        ({"tools": [tool], "tool_choice": "required"}, "tools"),
        ({"response_format": fmt}, "response_format"),
    ):
        body = {"model": LOCAL, "messages": ASK, "max_tokens": 5, **extra}
        answer = post_v1(local_server, "/chat/completions", body, "EMPTY")
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == param
