"""LangChain's `ChatOpenAI` as its users point it at LLM Server: tools and structured output.

On the local model (Chat Completions and, with `use_responses_api`, the Responses API) and
through to a Responses API stand-in.
"""

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from helpers.openai_app import openai_app_server

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
CALLER_KEY = "sk-langchain-" + "l" * 40


class City(BaseModel):
    """A city and its population."""

    city: str
    population: int


@tool
def get_weather(city: str) -> str:
    """The weather now in a city."""
    return f"3°C in {city}"


def local_chat(server, responses_api=False):
    return ChatOpenAI(
        model=LOCAL,
        base_url=f"{server.url}/v1",
        api_key="EMPTY",
        temperature=0,
        max_tokens=80,
        max_retries=0,
        use_responses_api=responses_api,
    )


@pytest.mark.model
@pytest.mark.parametrize("responses_api", [False, True])
def test_bind_tools_gets_a_tool_call_from_the_local_model(local_server, responses_api):
    chat = local_chat(local_server, responses_api).bind_tools(
        [get_weather], tool_choice="get_weather"
    )
    answer = chat.invoke("What is the weather in Seoul?")
    call = answer.tool_calls[0]
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)


@pytest.mark.model
@pytest.mark.parametrize("responses_api", [False, True])
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output_returns_the_model_on_the_local_model(
    local_server, responses_api, method
):
    chat = local_chat(local_server, responses_api).with_structured_output(City, method=method)
    city = chat.invoke("Name a city in Korea and its population.")
    assert isinstance(city, City)


@pytest.mark.model
def test_json_mode_returns_json_from_the_local_model(local_server):
    schema = {"title": "answer", "type": "object", "properties": {"city": {"type": "string"}}}
    chat = local_chat(local_server).with_structured_output(schema, method="json_mode")
    answer = chat.invoke('Reply with a JSON object with a "city" key: a city in Korea.')
    assert isinstance(answer, dict) and "city" in answer


def test_a_tool_round_trip_through_to_openai(fake):
    with openai_app_server(fake) as server:
        chat = ChatOpenAI(
            model="gpt-4o-mini", base_url=f"{server.url}/v1", api_key=CALLER_KEY, max_retries=0
        ).bind_tools([get_weather])
        asked = [HumanMessage("서울 날씨?")]
        called = chat.invoke(asked)
        call = called.tool_calls[0]
        result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
        answer = chat.invoke([*asked, called, result])
        structured = ChatOpenAI(
            model="gpt-4o-mini", base_url=f"{server.url}/v1", api_key=CALLER_KEY, max_retries=0
        ).with_structured_output(City, method="function_calling")
        city = structured.invoke("A city in Korea?")
    assert call["name"] == "get_weather" and call["args"] == {"city": "서울 날씨?"}
    assert answer.content == "echo: the tool said 3°C in 서울 날씨?"
    assert fake.seen[1].body["input"][-1]["type"] == "function_call_output"
    assert city == City(city="A city in Korea?", population=42)
