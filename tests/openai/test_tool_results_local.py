"""After a tool's result the local model answers in text: the loop every agent runs ends.

SmolLM2's chat template knows no tools, and the model copied `<tool_call>` markup it saw in the
prompt: 15 replies in 16 after a `role: "tool"` message or a `function_call_output` came back
empty. The round trip here is the `openai` SDK's own (a user question, the assistant's call with
no content, the tool's result, `tool_choice: auto`, temperature 0), on both APIs, whole and
streamed, for five cities: at least four must answer, and none may show markup.
"""

from __future__ import annotations

import json

import pytest

import openai
from llm_server.providers.local_tools import template_messages
from llm_server.values import ChatMessage, ToolCall

CITIES = {
    "Paris": "Sunny, 21C",
    "Tokyo": "Rainy, 15C",
    "London": "Cloudy, 12C",
    "Cairo": "Hot and sunny, 35C",
    "New York": "Snowing, -2C",
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def sdk(local_server):
    with openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0) as c:
        yield c


def chat_round_trip(city: str) -> list[dict]:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather"}}
    call["function"]["arguments"] = json.dumps({"city": city})
    return [
        {"role": "user", "content": f"What's the weather in {city}?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": CITIES[city]},
    ]


def responses_round_trip(city: str) -> list[dict]:
    return [
        {"role": "user", "content": f"What's the weather in {city}?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": json.dumps({"city": city}),
        },
        {"type": "function_call_output", "call_id": "call_1", "output": CITIES[city]},
    ]


def says_the_result(text: str, city: str) -> bool:
    """A text answer, free of markup, that names the weather the tool returned."""
    condition = CITIES[city].split(",")[0].split()[-1].lower()  # sunny, rainy, cloudy, snowing
    return bool(text.strip()) and "<" not in text and condition[:4] in text.lower()


def test_the_prompt_writes_a_tool_round_in_plain_words():
    """The template sees the call and its result in the user turn they answer, no markup."""
    messages = (
        ChatMessage("user", "What's the weather in Paris?"),
        ChatMessage(
            "assistant", "", tool_calls=(ToolCall("c1", "get_weather", '{"city": "Paris"}'),)
        ),
        ChatMessage("tool", "Sunny, 21C", tool_call_id="c1"),
    )
    assert template_messages(messages) == [
        {
            "role": "user",
            "content": "What's the weather in Paris?\n\n"
            'get_weather({"city": "Paris"}) returned: Sunny, 21C\n'
            "Answer the question using this result.",
        }
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_chat_completions_answer_in_text_after_the_result(sdk, stream):
    answers = {}
    for city in CITIES:
        request = dict(
            model="local",
            messages=chat_round_trip(city),
            tools=[WEATHER_TOOL],
            tool_choice="auto",
            temperature=0,
            max_tokens=60,
        )
        if stream:
            chunks = list(sdk.chat.completions.create(stream=True, **request))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
        else:
            reply = sdk.chat.completions.create(**request)
            text = reply.choices[0].message.content or ""
            assert reply.choices[0].message.tool_calls is None
        answers[city] = text
    right = [city for city, text in answers.items() if says_the_result(text, city)]
    assert len(right) >= 4, answers
    assert all(text.strip() for text in answers.values()), answers


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_responses_answer_in_text_after_the_function_call_output(sdk, stream):
    tool = {"type": "function", **WEATHER_TOOL["function"]}
    answers = {}
    for city in CITIES:
        request = dict(
            model="local",
            input=responses_round_trip(city),
            tools=[tool],
            tool_choice="auto",
            temperature=0,
            max_output_tokens=60,
            store=False,
        )
        if stream:
            events = list(sdk.responses.create(stream=True, **request))
            final = events[-1].response
            deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            assert deltas == final.output_text
        else:
            final = sdk.responses.create(**request)
        assert [item.type for item in final.output] == ["message"]
        answers[city] = final.output_text
    right = [city for city, text in answers.items() if says_the_result(text, city)]
    assert len(right) >= 4, answers
    assert all(text.strip() for text in answers.values()), answers


def test_a_tool_result_without_tools_offered_is_answered_too(sdk):
    """Frameworks send the round's last turn with `tool_choice: none` or no tools at all."""
    reply = sdk.chat.completions.create(
        model="local", messages=chat_round_trip("Paris"), temperature=0, max_tokens=60
    )
    assert says_the_result(reply.choices[0].message.content or "", "Paris")
