"""Our request as a Converse request, and a Converse answer (whole or streamed) as ours.

- The composed system prompt is `system`; messages become Converse turns, consecutive turns of
  one role merged (Converse requires alternation); an assistant's tool calls are `toolUse`
  blocks, all of them; tool results are `toolResult` blocks in the user turn that follows.
- Converse has no `toolChoice: none`, and refuses `toolUse`/`toolResult` blocks without a
  `toolConfig`: a request that offers no tools sends its tool turns as text instead.
- A JSON answer (`json_object`, `json_schema`) is a forced answer tool whose input is the
  reply: the way Bedrock's Converse takes a schema, on the families that can be forced. With
  the caller's tools beside it, the model must call one tool (`toolChoice: any`): one of the
  caller's, or the answer tool, whose input becomes the JSON text reply.
- Images are `image` blocks from data URLs only: the server fetches nothing a caller points at.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from llm_server.exceptions import BadRequestException
from llm_server.providers.bedrock.models import (
    CACHE_POINT_FAMILIES,
    FORCED_TOOL_FAMILIES,
    family,
)
from llm_server.values import (
    ChatMessage,
    FinishReason,
    Generation,
    GenerationRequest,
    OutputFormat,
    ToolCall,
    Tools,
)

CACHE_POINT = {"cachePoint": {"type": "default"}}
ANSWER_TOOL = "json_answer"
IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_DATA_URL = re.compile(r"^data:image/(?P<kind>[a-z]+);base64,(?P<data>.*)$", re.DOTALL)
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Call:
    """A Converse request's keyword arguments, and the answer tool's name if it forces one."""

    kwargs: dict[str, Any]
    answer_tool: str = ""


def converse_request(request: GenerationRequest, prompt_caching: bool) -> Call:
    """The `converse`/`converse_stream` keywords for `request` (refusing what cannot run)."""
    options = request.options
    caching = prompt_caching and family(request.model) in CACHE_POINT_FAMILIES
    tool_config, answer_tool = _tool_config(request.model, options.tools, options.output_format)
    kwargs: dict[str, Any] = {
        "modelId": request.model,
        "messages": converse_messages(request.messages, tools_on=tool_config is not None),
        "inferenceConfig": _inference_config(request),
    }
    if request.instructions.strip():
        kwargs["system"] = [{"text": request.instructions}, *([CACHE_POINT] if caching else [])]
    if tool_config is not None:
        if caching:
            tool_config["tools"].append(CACHE_POINT)
        kwargs["toolConfig"] = tool_config
    return Call(kwargs, answer_tool)


def _inference_config(request: GenerationRequest) -> dict[str, Any]:
    config: dict[str, Any] = {"maxTokens": request.max_tokens, "temperature": request.temperature}
    if request.options.top_p is not None:
        config["topP"] = request.options.top_p
    if request.options.stop:
        config["stopSequences"] = list(request.options.stop)
    return config


def _tool_config(
    model: str, tools: Tools, output: OutputFormat
) -> tuple[dict[str, Any] | None, str]:
    """Converse's `toolConfig` (None: no tools offered) and the answer tool's name, if any."""
    forcing = tools.choice == "required" or output.type != "text"
    if forcing and family(model) not in FORCED_TOOL_FAMILIES:
        what = output.param if output.type != "text" else "tool_choice"
        raise BadRequestException(
            f"{what}: {model} cannot be made to call a tool on Bedrock, which is how this "
            "server runs it there; Anthropic and Amazon Nova models can",
            param=what,
            code="unsupported_parameter",
        )
    specs = [_tool_spec(tool.name, tool.description, tool.schema) for tool in tools.functions]
    if output.type != "text" and not (tools.name or tools.choice == "required"):
        # the caller's tools and the answer tool, one of which must be called: a call of a
        # tool, or the answer (agent frameworks send tools and a typed result together)
        answer, name = _answer_tool(output, {tool.name for tool in tools.functions})
        if not tools.offered:
            return {"tools": [answer], "toolChoice": {"tool": {"name": name}}}, name
        return {"tools": [*specs, answer], "toolChoice": {"any": {}}}, name
    if not tools.offered:
        return None, ""
    choice: dict[str, Any] = {"auto": {}}
    if tools.name:
        choice = {"tool": {"name": tools.name}}
    elif tools.choice == "required":
        choice = {"any": {}}
    return {"tools": specs, "toolChoice": choice}, ""


def _answer_tool(output: OutputFormat, taken: set[str]) -> tuple[dict[str, Any], str]:
    """The answer tool's spec and name (not one of the caller's tools' names)."""
    schema = output.schema if output.type == "json_schema" and output.schema else None
    if schema is not None and schema.get("type", "object") != "object":
        raise BadRequestException(
            f"{output.param}: the bedrock provider answers JSON objects only (the schema's "
            "type must be object)",
            param=output.param,
            code="unsupported_parameter",
        )
    name = base = output.name if _TOOL_NAME.match(output.name) else ANSWER_TOOL
    for count in range(1, len(taken) + 2):  # one of these names is free
        if name not in taken:
            break
        name = f"{base[:60]}_{count}"
    schema = schema or {"type": "object"}
    spec = _tool_spec(name, "Give the answer: its input is the reply.", schema)
    return spec, name


def _tool_spec(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "inputSchema": {"json": schema}}
    if description:
        spec["description"] = description
    return {"toolSpec": spec}


def converse_messages(messages: tuple[ChatMessage, ...], tools_on: bool) -> list[dict[str, Any]]:
    """Converse turns: user and tool results as `user`, consecutive turns of a role merged."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message, tools_on)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: ChatMessage, tools_on: bool) -> list[dict[str, Any]]:
    """One message's content blocks (Converse refuses blank text: it is left out)."""
    if message.role == "tool":
        if not tools_on:
            return [{"text": f"[result of tool call {message.tool_call_id}]\n{message.content}"}]
        content: list[dict[str, Any]] = [{"json": {}}]
        if message.content.strip():
            content = [{"text": message.content}]
        return [{"toolResult": {"toolUseId": message.tool_call_id, "content": content}}]
    blocks: list[dict[str, Any]] = []
    if message.content.strip():
        blocks.append({"text": message.content})
    blocks += [_image(url) for url in message.images]
    for call in message.tool_calls:
        if tools_on:
            use = {"toolUseId": call.id, "name": call.name, "input": _input(call)}
            blocks.append({"toolUse": use})
        else:
            blocks.append({"text": f"[called tool {call.name} ({call.id}) with {call.arguments}]"})
    return blocks


def _input(call: ToolCall) -> dict[str, Any]:
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise BadRequestException(
            f"tool_calls: the arguments of call {call.id[:64]!r} are not a JSON object, which "
            "Bedrock needs",
            param="tool_calls",
        )
    return value


def _image(url: str) -> dict[str, Any]:
    match = _DATA_URL.match(url)
    if match is None:
        raise BadRequestException(
            "image_url: Bedrock takes images inline only, as data:image/...;base64 URLs (this "
            "server fetches nothing a caller points at)",
            param="image_url",
            code="unsupported_content",
        )
    kind = IMAGE_FORMATS.get(match["kind"])
    if kind is None:
        raise BadRequestException(
            f"image_url: Bedrock reads png, jpeg, gif and webp images, not {match['kind'][:16]}",
            param="image_url",
            code="unsupported_content",
        )
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestException(
            "image_url: the data URL is not valid base64", param="image_url"
        ) from None
    return {"image": {"format": kind, "source": {"bytes": data}}}


@dataclass
class Reply:
    """A Converse answer read block by block, whole or streamed."""

    request: GenerationRequest
    answer_tool: str
    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: dict[str, Any] = field(default_factory=dict)

    def add_block(self, block: dict[str, Any]) -> None:
        """A whole content block: text, or a tool use (the answer tool's input is text)."""
        if "text" in block:
            self.text.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = json.dumps(use.get("input") or {}, ensure_ascii=False)
            self.add_call(use["toolUseId"], use["name"], arguments)

    def add_call(self, call_id: str, name: str, arguments: str) -> None:
        """A tool use, once its input is whole."""
        if self.answer_tool and name == self.answer_tool:
            self.text.append(arguments)
        else:
            self.calls.append(ToolCall(call_id, name, arguments or "{}"))

    def generation(self, attempts: int) -> Generation:
        """The `Generation`: text, calls (one only when parallel calls were refused), usage."""
        options = self.request.options
        calls = self.calls if options.tools.parallel else self.calls[:1]
        reason = STOP_REASONS.get(self.stop_reason, "stop")
        if reason == "tool_calls" and not calls:
            reason = "stop"  # the forced answer tool: a JSON reply
        read = int(self.usage.get("cacheReadInputTokens") or 0)
        written = int(self.usage.get("cacheWriteInputTokens") or 0)
        return Generation(
            text="".join(self.text),
            model=self.request.model,
            input_tokens=int(self.usage.get("inputTokens") or 0) + read + written,
            output_tokens=int(self.usage.get("outputTokens") or 0),
            output_format=options.output_format.type,
            temperature=self.request.temperature,
            attempts=attempts,
            finish_reason=reason,
            tool_calls=tuple(calls),
            cached_input_tokens=read,
            cache_write_tokens=written,
        )


def whole_reply(response: dict[str, Any], request: GenerationRequest, answer_tool: str) -> Reply:
    """A `converse` answer as a `Reply`."""
    reply = Reply(request, answer_tool)
    for block in response["output"]["message"]["content"]:
        reply.add_block(block)
    reply.stop_reason = response.get("stopReason") or "end_turn"
    reply.usage = response.get("usage") or {}
    return reply
