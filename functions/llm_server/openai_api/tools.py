"""Tools in OpenAI's two shapes: definitions and `tool_choice` in, calls and results both ways.

Chat Completions nests a function (`{"type": "function", "function": {...}}`) where the
Responses API puts its fields beside `type`; both become `Tools`, and a reply's `ToolCall`s
become either API's calls.
"""

from __future__ import annotations

from pydantic import BaseModel

from llm_server.core.formats import check_depth
from llm_server.exceptions import BadRequestException
from llm_server.openai_api.protocol import (
    CalledFunction,
    ChatCompletionRequest,
    ChatToolCall,
    ChatToolChoice,
    FunctionDefinition,
    InputItem,
    ResponsesRequest,
    ResponsesToolChoice,
    ToolChoiceMode,
)
from llm_server.openai_api.response_objects import FunctionCallItem
from llm_server.values import ChatMessage, FunctionTool, ToolCall, Tools


def function_item(item: InputItem, where: str) -> ChatMessage:
    """A `function_call` item as the assistant's call, a `function_call_output` as its result."""
    call_id = required(item.call_id, f"{where}.call_id")
    if item.type == "function_call_output":
        return ChatMessage("tool", required(item.output, f"{where}.output"), tool_call_id=call_id)
    name = required(item.name, f"{where}.name")
    call = ToolCall(call_id, name, required(item.arguments, f"{where}.arguments"))
    return ChatMessage("assistant", "", tool_calls=(call,))


def required(value: str | None, param: str) -> str:
    """`value`, or a 400 naming `param` when the item lacks it."""
    if value is None:
        raise BadRequestException(f"{param} is required", param=param)
    return value


def tool_call(call: ChatToolCall) -> ToolCall:
    """A chat message's tool call as the core's `ToolCall`."""
    return ToolCall(call.id, call.function.name, call.function.arguments)


def chat_tools(body: ChatCompletionRequest) -> Tools:
    """A chat completion's `tools`, `tool_choice` and `parallel_tool_calls`."""
    functions = tuple(
        _function(tool.function, f"tools.{index}.function.parameters")
        for index, tool in enumerate(body.tools or ())
    )
    choice = body.tool_choice
    name = choice.function.name if isinstance(choice, ChatToolChoice) else ""
    return _tools(functions, choice, name, body.parallel_tool_calls)


def responses_tools(body: ResponsesRequest) -> Tools:
    """A Responses request's `tools`, `tool_choice` and `parallel_tool_calls`."""
    functions = tuple(
        _function(tool, f"tools.{index}.parameters") for index, tool in enumerate(body.tools or ())
    )
    choice = body.tool_choice
    name = choice.name if isinstance(choice, ResponsesToolChoice) else ""
    return _tools(functions, choice, name, body.parallel_tool_calls)


def _function(definition: FunctionDefinition, param: str) -> FunctionTool:
    if definition.parameters is not None:
        check_depth(definition.parameters, param)
    return FunctionTool(
        name=definition.name,
        description=definition.description or "",
        parameters=definition.parameters,
        strict=bool(definition.strict),
    )


def _tools(
    functions: tuple[FunctionTool, ...],
    choice: ToolChoiceMode | BaseModel | None,
    name: str,
    parallel: bool | None,
) -> Tools:
    """The tools, checked: a forced function must be one of them, and `required` needs some."""
    mode: ToolChoiceMode = (
        "required" if name or choice == "required" else "none" if choice == "none" else "auto"
    )
    if name and name not in {tool.name for tool in functions}:
        raise BadRequestException(
            f"tool_choice names {name!r}, which is not in tools", param="tool_choice"
        )
    if mode == "required" and not functions:
        raise BadRequestException("tool_choice requires tools", param="tool_choice")
    return Tools(functions, mode, name, True if parallel is None else parallel)


def chat_tool_call(call: ToolCall) -> ChatToolCall:
    """A tool call as Chat Completions shows it."""
    return ChatToolCall(
        id=call.id, function=CalledFunction(name=call.name, arguments=call.arguments)
    )


def function_call_item(call: ToolCall, item_id: str, status: str = "completed") -> FunctionCallItem:
    """A `function_call` output item (`item_id`: its id in its response)."""
    return FunctionCallItem(
        id=item_id,
        call_id=call.id,
        name=call.name,
        arguments=call.arguments if status == "completed" else "",
        status=status,
    )
