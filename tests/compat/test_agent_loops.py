"""The loop every agent runs — call a tool, send its result, read the answer — on the local model,
through real agent frameworks pointed at the server by base URL: the Vercel AI SDK (Node.js), the
OpenAI Agents SDK and LangGraph's `create_react_agent`, on chat completions and the Responses API,
whole and streamed. Each forces the first step's call, as agents do for a small model (it may
answer without a tool otherwise), and the loop must end in a text answer of the tool's result.
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
from langchain_core.messages import AIMessageChunk, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from helpers.node_clients import run_node
from openai import AsyncOpenAI

APIS = ["chat", "responses"]
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "weather": {"type": "string"}},
    "required": ["city", "weather"],
    "additionalProperties": False,
}


def answers_the_result(text: str) -> bool:
    return "sunny" in text.lower() and "<" not in text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_the_ai_sdk_tool_loop_ends_in_an_answer(local_server, api, stream):
    result = run_node(
        "ai_sdk.mjs",
        {
            "baseURL": f"{local_server.url}/v1",
            "model": "local",
            "api": api,
            "stream": stream,
            "firstCall": True,
        },
    )
    first, last = result["steps"][0], result["steps"][-1]
    assert first["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert last["finishReason"] == "stop" and last["content"] == ["text"]
    assert answers_the_result(result["text"])
    if stream:  # the streamed parts make the final text, and no part is an empty text
        deltas = [p["text"] for p in result["parts"] if p["type"] == "text-delta"]
        assert "".join(deltas) == result["text"] and all(deltas)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_the_ai_sdk_tools_with_a_typed_result_end_in_json_without_markup(local_server, api, stream):
    """The AI SDK's `tools` + `Output.object`: an answer ended in `</tool_call>You can call ...`."""
    result = run_node(
        "ai_sdk.mjs",
        {
            "baseURL": f"{local_server.url}/v1",
            "model": "local",
            "api": api,
            "stream": stream,
            "firstCall": True,
            "output": CITY,
        },
    )
    assert result["steps"][0]["toolCalls"][0]["name"] == "get_weather"
    assert result["output"]["city"] == "Paris" and answers_the_result(result["output"]["weather"])
    assert "tool_call" not in result["text"]


calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    calls.append(city)
    return "Sunny, 21C"


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    calls.clear()
    yield


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_the_agents_sdk_runs_the_tool_and_answers(local_server, api, stream):
    """`tool_choice: required`, which the SDK resets to auto once the tool ran: then the answer."""
    client = AsyncOpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)
    kind = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
    agent = Agent(
        name="weather",
        model=kind(model="local", openai_client=client),
        model_settings=ModelSettings(temperature=0, max_tokens=60, tool_choice="required"),
        tools=[get_weather],
    )

    async def run() -> object:
        if not stream:
            return (
                await Runner.run(agent, "What's the weather in Paris?", max_turns=4)
            ).final_output
        streamed = Runner.run_streamed(agent, "What's the weather in Paris?", max_turns=4)
        async for _ in streamed.stream_events():
            pass
        return streamed.final_output

    final = asyncio.run(run())
    assert calls == ["Paris"]
    assert isinstance(final, str) and answers_the_result(final)


@tool
def weather_tool(city: str) -> str:
    """Get the current weather in a city."""
    return "Sunny, 21C"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_langgraph_react_agent_loops_to_an_answer(local_server, api, stream):
    """`create_react_agent` with a model chosen per step: the first must call the tool."""
    from langgraph.prebuilt import create_react_agent

    chat = ChatOpenAI(
        model="local",
        base_url=f"{local_server.url}/v1",
        api_key="EMPTY",
        temperature=0,
        max_tokens=60,
        max_retries=0,
        use_responses_api=api == "responses",
    )

    def model(state, runtime):
        called = any(isinstance(m, ToolMessage) for m in state["messages"])
        return chat.bind_tools([weather_tool], tool_choice="auto" if called else "required")

    agent = create_react_agent(model, [weather_tool])
    question = {"messages": [("user", "What's the weather in Paris?")]}
    if stream:
        parts = [m for m, _ in agent.stream(question, stream_mode="messages")]
        text = "".join(m.text() for m in parts if isinstance(m, AIMessageChunk))
        final = agent.invoke(question)["messages"][-1].text()
        assert text == final
    else:
        messages = agent.invoke(question)["messages"]
        assert [type(m).__name__ for m in messages] == [
            "HumanMessage",
            "AIMessage",
            "ToolMessage",
            "AIMessage",
        ]
        final = messages[-1].text()
    assert answers_the_result(final)
