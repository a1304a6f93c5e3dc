"""LangChain's ChatOpenAI and the SDK's legacy completions pointed at our /v1 with a Bedrock model.

On the emulator (ministack's bedrock-runtime forwarding to the scripted chat server).
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

import openai
from helpers.bedrock import CLAUDE, KNOWN, NOVA
from helpers.fake_chat import Answer, last_user_text


class City(BaseModel):
    """A city and its population."""

    city: str
    population: int


@tool
def get_weather(city: str) -> str:
    """The weather now in a city."""
    return f"{city}: 맑음, 3°C"


def chat_model(server, model=NOVA, responses_api=False) -> ChatOpenAI:
    return ChatOpenAI(
        model=model,
        base_url=f"{server.url}/v1",
        api_key="EMPTY",
        default_headers=KNOWN,
        max_retries=0,
        use_responses_api=responses_api,
    )


@pytest.mark.parametrize("responses_api", [False, True])
def test_langchain_runs_a_tool_round_trip_on_bedrock(server, chat, responses_api):
    model = chat_model(server, responses_api=responses_api).bind_tools([get_weather])
    chat.enqueue(Answer(calls=[("get_weather", {"city": "서울"})]), Answer(text="서울은 맑습니다."))
    asked = [HumanMessage("서울 날씨 알려줘")]
    called = model.invoke(asked)
    call = called.tool_calls[0]
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    answer = model.invoke([*asked, called, result])
    assert call["name"] == "get_weather" and call["args"] == {"city": "서울"}
    assert answer.text() == "서울은 맑습니다."
    tool_turn = chat.seen[-1]["messages"][-1]
    assert tool_turn["role"] == "tool" and tool_turn["content"] == "서울: 맑음, 3°C"


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_langchain_structured_output_on_bedrock(server, chat, method):
    chat.enqueue(Answer(calls=[("City", {"city": "부산", "population": 3_300_000})]))
    model = chat_model(server, CLAUDE).with_structured_output(City, method=method)
    city = model.invoke("한국의 항구 도시 하나와 인구는?")
    assert city == City(city="부산", population=3_300_000)
    assert chat.seen[-1]["tool_choice"] == {"type": "function", "function": {"name": "City"}}


def test_legacy_completions_on_bedrock(server, chat):
    client = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="EMPTY", default_headers=KNOWN, max_retries=0
    )
    done = client.completions.create(model=NOVA, prompt="옛날 옛적에", max_tokens=20)
    assert done.choices[0].text == "echo: 옛날 옛적에" and done.model == NOVA
    assert last_user_text(chat.seen[-1]) == "옛날 옛적에"
