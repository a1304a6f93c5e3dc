"""The Open Responses specification's compliance cases, as pytest, on both providers.

Each case's request is the specification's; every whole response and every stream event is
validated with `openresponses-types` in strict mode and against OpenAI's published document.
On the local model, image input is a 400 naming the field (the model reads text only), and the
tool cases set `tool_choice: "required"`: with `auto` the 135M model usually answers in text,
which is allowed but would not exercise the call.
"""

import json

import httpx
import openresponses_types as ort
import pytest

from helpers.openai_app import openai_app_server
from helpers.openai_spec import validate

CALLER_KEY = "sk-open-responses-" + "o" * 40
LOCAL = "SmolLM2-135M-Instruct.Q4_1"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "The city"}},
        "required": ["location"],
    },
}
IMAGE = "https://upload.wikimedia.org/wikipedia/commons/3/3f/Fronalpstock_big.jpg"


def user(content):
    return {"type": "message", "role": "user", "content": content}


CASES = {
    "basic": {"input": [user("Say hello in exactly 3 words.")]},
    "streaming": {"input": [user("Count from 1 to 5.")], "stream": True},
    "system prompt": {
        "input": [
            {"type": "message", "role": "system", "content": "You are a pirate. Talk like one."},
            user("Say hello."),
        ]
    },
    "tool calling": {
        "input": [user("What's the weather like in San Francisco?")],
        "tools": [WEATHER_TOOL],
    },
    "tool calling streamed": {
        "input": [user("What's the weather like in San Francisco?")],
        "tools": [WEATHER_TOOL],
        "stream": True,
    },
    "image input": {
        "input": [
            user(
                [
                    {"type": "input_text", "text": "What is in this image?"},
                    {"type": "input_image", "image_url": IMAGE},
                ]
            )
        ]
    },
    "multi-turn": {
        "input": [
            user("My name is Alice."),
            {"type": "message", "role": "assistant", "content": "Hello Alice! How can I help?"},
            user("What is my name?"),
        ]
    },
}
EVENTS = {
    name.removesuffix("StreamingEvent"): getattr(ort, name)
    for name in dir(ort)
    if name.endswith("StreamingEvent")
}


def event_type(kind):
    """`response.output_text.delta` → ort's ResponseOutputTextDeltaStreamingEvent."""
    words = kind.replace(".", "_").split("_")
    return EVENTS["".join(word.capitalize() for word in words)]


def checked_response(body):
    ort.ResponseResource.model_validate_json(json.dumps(body), strict=True)
    validate(body, "Response")
    return body


def checked_stream(text):
    streamed = [json.loads(block.split("data: ", 1)[1]) for block in text.strip().split("\n\n")]
    assert [event["sequence_number"] for event in streamed] == list(range(len(streamed)))
    for event in streamed:
        event_type(event["type"]).model_validate_json(json.dumps(event), strict=True)
    # a reply cut at max_output_tokens ends `incomplete`, as the specification says
    assert streamed[-1]["type"] == f"response.{streamed[-1]['response']['status']}"
    assert streamed[-1]["type"] in ("response.completed", "response.incomplete")
    return checked_response(streamed[-1]["response"])


def run_case(url, model, case, key="EMPTY"):
    body = {"model": model, **CASES[case]}
    if model == LOCAL:
        body["max_output_tokens"] = 100
        body["temperature"] = 0
        if "tools" in body:
            body["tool_choice"] = "required"
    headers = {"Authorization": f"Bearer {key}"}
    answer = httpx.post(f"{url}/v1/responses", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return checked_stream(answer.text) if body.get("stream") else checked_response(answer.json())


def expected(case, response):
    kinds = [item["type"] for item in response["output"]]
    if case.startswith("tool calling"):
        call = response["output"][kinds.index("function_call")]
        assert json.loads(call["arguments"])["location"]
    else:
        assert kinds == ["message"] and response["output"][0]["content"][0]["text"]


@pytest.fixture(scope="module")
def upstream():
    from helpers.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake, openai_app_server(fake) as server:
        yield server, fake


@pytest.mark.parametrize("case", CASES)
def test_each_case_passes_on_the_openai_provider(upstream, case):
    server, fake = upstream
    response = run_case(server.url, "gpt-4o-mini", case, CALLER_KEY)
    expected(case, response)
    if case == "image input":
        sent = fake.seen[-1].body["input"][0]["content"]
        assert sent[1] == {"type": "input_image", "image_url": IMAGE, "detail": "auto"}


@pytest.mark.model
@pytest.mark.parametrize("case", [case for case in CASES if case != "image input"])
def test_each_case_but_images_passes_on_the_local_model(local_server, case):
    expected(case, run_case(local_server.url, LOCAL, case))


@pytest.mark.model
def test_image_input_on_the_local_model_is_a_400_naming_the_field(local_server):
    body = {"model": LOCAL, **CASES["image input"]}
    answer = httpx.post(f"{local_server.url}/v1/responses", json=body, timeout=60)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "image_url"
