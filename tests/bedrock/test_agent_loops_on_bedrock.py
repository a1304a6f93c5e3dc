"""The agent loop on a Bedrock model (ministack's bedrock-runtime, answers scripted): the Vercel AI
SDK (Node.js), the OpenAI Agents SDK and LangGraph, on both APIs, whole and streamed. The loop
ends in the answer; the streamed parts carry no empty text; tools and a typed result together
end in the JSON the answer tool was given."""

from __future__ import annotations

import asyncio

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
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from helpers.bedrock import KNOWN, NOVA
from helpers.fake_chat import Answer
from helpers.node_clients import run_node
from openai import AsyncOpenAI

APIS = ["chat", "responses"]
ANSWER = "파리는 맑고 21도입니다."


def loop(chat) -> None:
    chat.enqueue(Answer(calls=[("get_weather", {"city": "Paris"})]), Answer(text=ANSWER))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_the_ai_sdk_tool_loop_on_bedrock(server, chat, api, stream):
    loop(chat)
    result = run_node(
        "ai_sdk.mjs",
        {
            "baseURL": f"{server.url}/v1",
            "headers": KNOWN,
            "model": NOVA,
            "api": api,
            "stream": stream,
        },
    )
    first, last = result["steps"][0], result["steps"][-1]
    assert first["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert first["content"] == ["tool-call", "tool-result"]  # no empty text part before the call
    assert result["text"] == ANSWER and last["finishReason"] == "stop"
    assert chat.seen[-1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": chat.seen[-1]["messages"][-2]["tool_calls"][0]["id"],
        "content": "Sunny, 21C",
    }
    if stream:
        deltas = [p["text"] for p in result["parts"] if p["type"] == "text-delta"]
        assert "".join(deltas) == ANSWER and all(deltas)
        assert not [p for p in result["parts"] if p["type"] == "text-start"][1:]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_the_ai_sdk_tools_with_a_typed_result_on_bedrock(server, chat, api, stream):
    """`response_format together with tools is not supported by the bedrock provider`, before."""
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "weather": {"type": "string"}},
        "required": ["city", "weather"],
        "additionalProperties": False,
    }
    chat.enqueue(
        Answer(calls=[("get_weather", {"city": "Paris"})]),
        Answer(calls=[("response", {"city": "Paris", "weather": "Sunny, 21C"})]),
    )
    result = run_node(
        "ai_sdk.mjs",
        {
            "baseURL": f"{server.url}/v1",
            "headers": KNOWN,
            "model": NOVA,
            "api": api,
            "stream": stream,
            "output": schema,
        },
    )
    assert result["steps"][0]["toolCalls"][0]["name"] == "get_weather"
    assert result["output"] == {"city": "Paris", "weather": "Sunny, 21C"}
    offered = {t["function"]["name"] for t in chat.seen[-1]["tools"]}
    assert "get_weather" in offered and len(offered) == 2


calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    calls.append(city)
    return "Sunny, 21C"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_the_agents_sdk_loop_on_bedrock(server, chat, api, stream):
    set_tracing_disabled(True)
    calls.clear()
    loop(chat)
    client = AsyncOpenAI(
        base_url=f"{server.url}/v1", api_key="EMPTY", default_headers=KNOWN, max_retries=0
    )
    kind = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
    agent = Agent(
        name="weather",
        model=kind(model=NOVA, openai_client=client),
        model_settings=ModelSettings(max_tokens=200),
        tools=[get_weather],
    )

    async def run() -> object:
        if not stream:
            return (await Runner.run(agent, "What's the weather in Paris?")).final_output
        streamed = Runner.run_streamed(agent, "What's the weather in Paris?")
        async for _ in streamed.stream_events():
            pass
        return streamed.final_output

    assert asyncio.run(run()) == ANSWER
    assert calls == ["Paris"]


@tool
def weather_tool(city: str) -> str:
    """Get the current weather in a city."""
    return "Sunny, 21C"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_langgraph_react_agent_on_bedrock(server, chat, api, stream):
    from langgraph.prebuilt import create_react_agent

    chat.enqueue(Answer(calls=[("weather_tool", {"city": "Paris"})]), Answer(text=ANSWER))
    model = ChatOpenAI(
        model=NOVA,
        base_url=f"{server.url}/v1",
        api_key="EMPTY",
        default_headers=KNOWN,
        max_retries=0,
        use_responses_api=api == "responses",
    )
    agent = create_react_agent(model, [weather_tool])
    question = {"messages": [("user", "What's the weather in Paris?")]}
    if stream:
        parts = [m for m, _ in agent.stream(question, stream_mode="messages")]
        text = "".join(m.text() for m in parts if isinstance(m, AIMessageChunk))
        assert text == ANSWER
    else:
        messages = agent.invoke(question)["messages"]
        assert [type(m).__name__ for m in messages] == [
            "HumanMessage",
            "AIMessage",
            "ToolMessage",
            "AIMessage",
        ]
        assert messages[-1].text() == ANSWER
