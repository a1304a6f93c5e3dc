"""Our request as a Converse request, and a Converse answer (whole or streamed) as ours.

- The composed system prompt is `system`; messages become Converse turns (`content.py`).
- Converse has no `toolChoice: none`: a request that offers no tools sends no `toolConfig`.
- Reasoning is Claude's thinking (`thinking.py`); what the model thought comes back as thoughts.
- A JSON answer (`json_object`, `json_schema`) is a forced answer tool whose input is the
  reply: the way Bedrock's Converse takes a schema, on the families that can be forced. With
  the caller's tools beside it, the model must call one tool (`toolChoice: any`): one of the
  caller's, or the answer tool, whose input becomes the JSON text reply.
- Cache points: after the system prompt and the tools where the operator turns prompt caching
  on (BEDROCK_PROMPT_CACHING) or the caller asks (Anthropic's `cache_control`), and after each
  message the caller marked, on the families that take them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from llm_server.core.text import text_tokens
from llm_server.exceptions import BadRequestException
from llm_server.providers.bedrock.content import CACHE_POINT, converse_messages, read_thought
from llm_server.providers.bedrock.models import (
    CACHE_POINT_FAMILIES,
    FORCED_TOOL_FAMILIES,
    family,
)
from llm_server.providers.bedrock.thinking import request_fields, thinking_budget
from llm_server.values import (
    FinishReason,
    Generation,
    GenerationRequest,
    OutputFormat,
    Thought,
    ToolCall,
    Tools,
)

ANSWER_TOOL = "json_answer"
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Call:
    """A Converse request's keyword arguments, and the answer tool's name if it forces one."""

    kwargs: dict[str, Any]
    answer_tool: str = ""


def converse_request(request: GenerationRequest, prompt_caching: bool) -> Call:
    """The `converse`/`converse_stream` keywords for `request` (refusing what cannot run)."""
    options = request.options
    cacheable = family(request.model) in CACHE_POINT_FAMILIES
    points = {"system", "tools"} if prompt_caching else options.cache_points
    tool_config, answer_tool = _tool_config(request.model, options.tools, options.output_format)
    forced = tool_config is not None and "auto" not in tool_config["toolChoice"]
    budget = thinking_budget(request, forced)
    kwargs: dict[str, Any] = {
        "modelId": request.model,
        "messages": converse_messages(
            request.messages, tool_config is not None, budget is not None, cacheable
        ),
        "inferenceConfig": _inference_config(request, thinking=budget is not None),
    }
    if request.instructions.strip():
        cache = [CACHE_POINT] if cacheable and "system" in points else []
        kwargs["system"] = [{"text": request.instructions}, *cache]
    if tool_config is not None:
        if cacheable and "tools" in points:
            tool_config["tools"].append(CACHE_POINT)
        kwargs["toolConfig"] = tool_config
    if budget is not None:
        kwargs["additionalModelRequestFields"] = request_fields(budget)
    if options.stop and family(request.model) == "anthropic":  # which sequence stopped it
        kwargs["additionalModelResponseFieldPaths"] = ["/stop_sequence"]
    return Call(kwargs, answer_tool)


def _inference_config(request: GenerationRequest, thinking: bool) -> dict[str, Any]:
    """maxTokens, temperature, topP, stopSequences: Claude thinks at its own temperature."""
    config: dict[str, Any] = {"maxTokens": request.max_tokens}
    if not thinking:
        config["temperature"] = request.temperature
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


@dataclass
class Reply:
    """A Converse answer read block by block, whole or streamed."""

    request: GenerationRequest
    answer_tool: str
    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    thoughts: list[Thought] = field(default_factory=list)
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)

    def add_block(self, block: dict[str, Any]) -> None:
        """A whole content block: text, thinking, or a tool use (the answer tool's: text)."""
        if "text" in block:
            self.text.append(block["text"])
        elif "reasoningContent" in block:
            self.thoughts.append(read_thought(block["reasoningContent"]))
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
        output = int(self.usage.get("outputTokens") or 0)
        thought = [t.text for t in self.thoughts]  # Bedrock's usage does not break them out
        return Generation(
            text="".join(self.text),
            model=self.request.model,
            input_tokens=int(self.usage.get("inputTokens") or 0) + read + written,
            output_tokens=output,
            output_format=options.output_format.type,
            temperature=self.request.temperature,
            attempts=attempts,
            finish_reason=reason,
            tool_calls=tuple(calls),
            cached_input_tokens=read,
            cache_write_tokens=written,
            thoughts=tuple(self.thoughts),
            reasoning_tokens=min(output, text_tokens(thought)) if any(thought) else 0,
            stop_sequence=self.stop_sequence,
        )

    def stopped(self, reason: str | None, fields: dict[str, Any] | None) -> None:
        """Why the model stopped, and which stop sequence (Claude's, when asked for)."""
        self.stop_reason = reason or "end_turn"
        if self.stop_reason == "stop_sequence":
            matched = (fields or {}).get("stop_sequence")
            self.stop_sequence = matched if isinstance(matched, str) else ""


def whole_reply(response: dict[str, Any], request: GenerationRequest, answer_tool: str) -> Reply:
    """A `converse` answer as a `Reply`."""
    reply = Reply(request, answer_tool)
    for block in response["output"]["message"]["content"]:
        reply.add_block(block)
    reply.stopped(response.get("stopReason"), response.get("additionalModelResponseFields"))
    reply.usage = response.get("usage") or {}
    return reply
