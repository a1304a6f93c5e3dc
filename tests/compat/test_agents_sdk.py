"""The OpenAI Agents SDK (`openai-agents`) on the local model, as its users run agents.

Both of its model classes point at the server by base URL alone: `OpenAIResponsesModel`
(`/v1/responses`) and `OpenAIChatCompletionsModel` (`/v1/chat/completions`). Tracing is off:
it would post to OpenAI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from pydantic import BaseModel

from openai import AsyncOpenAI

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
PATHS = ["responses", "chat"]


class Place(BaseModel):
    city: str
    country: str


calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city now."""
    calls.append(city)
    return f"{city}: 맑음, 21°C"


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    calls.clear()
    yield


def model(local_server, path: str):
    client = AsyncOpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)
    kind = OpenAIResponsesModel if path == "responses" else OpenAIChatCompletionsModel
    return kind(model=LOCAL, openai_client=client)


def settings(**more) -> ModelSettings:
    """Greedy, and room enough to finish (a reply cut at its limit is an error to the SDK)."""
    return ModelSettings(**{"temperature": 0, "max_tokens": 300, **more})


@pytest.mark.parametrize("path", PATHS)
def test_runner_run_answers(local_server, path):
    agent = Agent(
        name="greeter",
        instructions="You answer in one short sentence.",
        model=model(local_server, path),
        model_settings=settings(),
    )
    result = asyncio.run(Runner.run(agent, "안녕하세요! 오늘 기분 어때요?"))
    assert isinstance(result.final_output, str) and result.final_output.strip()


@pytest.mark.parametrize("path", PATHS)
def test_run_streamed_streams_text_and_ends(local_server, path):
    agent = Agent(name="streamer", model=model(local_server, path), model_settings=settings())

    async def run() -> tuple[int, object]:
        streamed = Runner.run_streamed(agent, "Name three colours.")
        events = [event async for event in streamed.stream_events()]
        return len(events), streamed.final_output

    count, final = asyncio.run(run())
    assert count > 1
    assert isinstance(final, str) and final.strip()


@pytest.mark.parametrize("path", PATHS)
def test_a_function_tool_with_tool_choice_required_is_called(local_server, path):
    agent = Agent(
        name="weather",
        instructions="Use the tool for weather questions.",
        model=model(local_server, path),
        model_settings=settings(tool_choice="required"),
        tools=[get_weather],
        tool_use_behavior="stop_on_first_tool",
    )
    result = asyncio.run(Runner.run(agent, "What is the weather in Paris?"))
    assert len(calls) == 1 and calls[0]
    assert result.final_output == f"{calls[0]}: 맑음, 21°C"


@pytest.mark.parametrize("path", PATHS)
def test_an_agent_with_tools_and_an_output_type(local_server, path):
    """Both in one request (a 400 before): the run ends in a `Place` the SDK parsed."""
    agent = Agent(
        name="geographer",
        instructions="Answer with the city and its country.",
        model=model(local_server, path),
        model_settings=settings(),
        tools=[get_weather],
        output_type=Place,
    )
    result = asyncio.run(Runner.run(agent, "Where is the Eiffel Tower?", max_turns=4))
    assert isinstance(result.final_output, Place)


def test_two_turns_through_previous_response_id(local_server):
    agent = Agent(
        name="memory",
        instructions="You are brief.",
        model=model(local_server, "responses"),
        model_settings=settings(),
    )

    async def run() -> tuple[object, object]:
        first = await Runner.run(agent, "My name is 민준.")
        second = await Runner.run(
            agent, "What is my name?", previous_response_id=first.last_response_id
        )
        return first, second

    first, second = asyncio.run(run())
    assert first.last_response_id and second.last_response_id
    assert second.last_response_id != first.last_response_id
    assert isinstance(second.final_output, str)
