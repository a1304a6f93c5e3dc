"""A Messages API request as a turn, and a turn's outcome as Anthropic's message.

Every field is honoured or refused by name. What Claude Code sends and some provider has no use
for is passed over there, each for a reason that leaves the answer as the caller asked it:
- `thinking: {"type": "adaptive"}`: the model decides whether to think; one that cannot reason
  decides not to (an `enabled` budget is refused by name where the model cannot reason).
- `output_config.effort`: with adaptive thinking, a hint the model may take (a thinking budget
  on Claude); nothing to honour where there is no reasoning.
- `context_management` `clear_thinking_20251015`: applied (with `keep: "all"`, nothing to clear).
- `cache_control`, top level or on blocks: prompt-cache breakpoints where the provider caches
  (Bedrock's `cachePoint`); a provider without one only answers slower.
- `metadata.user_id`, `service_tier`, a tool's `defer_loading`: metadata, or a hint to load a
  tool's schema late: every tool is offered whole, as without it.
- a `system` message inside `messages` (Claude Code's per-turn context): added to the system
  prompt, where every provider reads system text.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any, Literal

from llm_server.anthropic_api.protocol import (
    Block,
    Message,
    MessageObject,
    MessagesRequest,
    StopReason,
    Usage,
)
from llm_server.core.formats import check_depth, parse_output_format
from llm_server.core.text import bounded
from llm_server.core.thoughts import seal_of, thought_from
from llm_server.core.turn import Outcome, Turn
from llm_server.exceptions import BadRequestException
from llm_server.values import (
    ChatMessage,
    Document,
    FunctionTool,
    Generation,
    OutputFormat,
    Reasoning,
    SamplingOptions,
    Thought,
    ToolCall,
    Tools,
)

UNHONOURED = ("top_k",)
"""Fields no provider here applies: a 400 naming them, never run without them."""
KNOWN_EDITS = "clear_thinking_20251015"
STOP_REASONS: dict[str, StopReason] = {
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def turn_for(body: MessagesRequest, max_tokens_limit: int, counting: bool = False) -> Turn:
    """The turn of a Messages request; `counting`: for `count_tokens` (no `max_tokens`)."""
    _refuse_unknown(body)
    if body.max_tokens is None and not counting:
        raise BadRequestException("max_tokens: field required", param="max_tokens")
    system, messages = conversation(body.messages)
    messages = _cleared(messages, body.context_management)
    cached = body.cache_control is not None
    if cached and messages:  # automatic caching: up to the newest message
        messages[-1] = _with_cache_point(messages[-1])
    options = SamplingOptions(
        top_p=body.top_p,
        stop=tuple(body.stop_sequences or ()),
        output_format=_output_format(body),
        tools=_tools(body),
        reasoning=_reasoning(body),
        cache_points=_cache_points(body, cached),
    )
    return Turn(
        instructions="\n\n".join(part for part in [*_system(body), *system] if part),
        messages=tuple(messages),
        model=body.model,
        temperature=body.temperature,
        max_tokens=min(body.max_tokens, max_tokens_limit) if body.max_tokens else None,
        free_mode=True,  # the caller's x-api-key names the tenant; no OpenAI key travels here
        options=options,
    )


def _refuse_unknown(body: MessagesRequest) -> None:
    """A field this server does not know, or knows and cannot apply: a 400 naming it."""
    named = [*(body.model_extra or {})]
    named += [name for name in UNHONOURED if getattr(body, name) is not None]
    if named:
        name = bounded(named[0])
        raise BadRequestException(f"{name}: not supported by this server", param=name)


def conversation(messages: list[Message]) -> tuple[list[str], list[ChatMessage]]:
    """The system texts found among the messages, and the conversation as the core's."""
    system: list[str] = []
    turns: list[ChatMessage] = []
    for index, message in enumerate(messages):
        where = f"messages.{index}.content"
        blocks = (
            [Block(type="text", text=message.content)]
            if isinstance(message.content, str)
            else message.content
        )
        if message.role == "system":
            system.append(_text(blocks, where))
        elif message.role == "assistant":
            turns.append(_assistant(blocks, where))
        else:
            turns += _user(blocks, where)
    if not turns:
        raise BadRequestException("messages: at least one message is required", param="messages")
    return system, turns


def _assistant(blocks: list[Block], where: str) -> ChatMessage:
    thoughts: list[Thought] = []
    texts: list[str] = []
    calls: list[ToolCall] = []
    for index, block in enumerate(blocks):
        at = f"{where}.{index}"
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "thinking":
            thoughts.append(thought_from(block.thinking or "", block.signature or ""))
        elif block.type == "redacted_thinking":
            thoughts.append(thought_from("", block.data or ""))
        elif block.type == "tool_use":
            calls.append(_call(block, at))
        else:
            raise _unsupported(block, at)
    cache = any(block.cache_control for block in blocks)
    return ChatMessage(
        "assistant",
        "".join(texts),
        tool_calls=tuple(calls),
        thoughts=tuple(thoughts),
        cache_point=cache,
    )


def _call(block: Block, where: str) -> ToolCall:
    if not block.id or not block.name:
        raise BadRequestException(f"{where}: a tool_use needs its id and name", param=where)
    return ToolCall(block.id, block.name, json.dumps(block.input or {}, ensure_ascii=False))


def _user(blocks: list[Block], where: str) -> list[ChatMessage]:
    """Tool results first (each its own `tool` message), then what the user said."""
    results: list[ChatMessage] = []
    texts: list[str] = []
    images: list[str] = []
    documents: list[Document] = []
    for index, block in enumerate(blocks):
        at = f"{where}.{index}"
        if block.type == "tool_result":
            results.append(_result(block, at))
        elif block.type == "text":
            texts.append(block.text or "")
        elif block.type == "image":
            images.append(_image(block, at))
        elif block.type == "document":
            documents.append(_document(block, at))
        else:
            raise _unsupported(block, at)
    cache = any(block.cache_control for block in blocks)
    if not (texts or images or documents):
        if cache and results:
            results[-1] = _with_cache_point(results[-1])
        return results
    said = ChatMessage(
        "user", "\n\n".join(texts), tuple(images), documents=tuple(documents), cache_point=cache
    )
    return [*results, said]


def _result(block: Block, where: str) -> ChatMessage:
    if not block.tool_use_id:
        raise BadRequestException(
            f"{where}.tool_use_id: a tool_result needs it", param=f"{where}.tool_use_id"
        )
    content = block.content
    blocks = [Block(type="text", text=content)] if isinstance(content, str) else content or []
    texts: list[str] = []
    images: list[str] = []
    for index, part in enumerate(blocks):
        if part.type == "text":
            texts.append(part.text or "")
        elif part.type == "image":
            images.append(_image(part, f"{where}.content.{index}"))
        else:
            raise _unsupported(part, f"{where}.content.{index}")
    return ChatMessage(
        "tool",
        "\n\n".join(texts),
        tuple(images),
        tool_call_id=block.tool_use_id,
        is_error=bool(block.is_error),
    )


def _image(block: Block, where: str) -> str:
    source = block.source or {}
    if source.get("type") != "base64":
        raise BadRequestException(
            f"{where}.source: images are taken inline only (type base64): this server fetches "
            "nothing a caller points at",
            param=f"{where}.source",
            code="unsupported_content",
        )
    return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"


def _document(block: Block, where: str) -> Document:
    """A PDF (base64) or a plain-text document; a URL is refused, as for images."""
    source = block.source or {}
    kind, media_type = source.get("type"), str(source.get("media_type", ""))
    name = block.title or "document"
    if kind == "text" and isinstance(source.get("data"), str):
        return Document(name, media_type or "text/plain", source["data"].encode())
    if kind == "base64" and isinstance(source.get("data"), str):
        try:
            data = base64.b64decode(source["data"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequestException(
                f"{where}.source.data: not valid base64", param=f"{where}.source.data"
            ) from None
        return Document(name, media_type or "application/pdf", data)
    raise BadRequestException(
        f"{where}.source: a document is taken as base64 (a PDF) or text; this server fetches "
        "nothing a caller points at",
        param=f"{where}.source",
        code="unsupported_content",
    )


def _unsupported(block: Block, where: str) -> BadRequestException:
    return BadRequestException(
        f"{where}: content of type {block.type[:32]!r} is not supported here",
        param=where,
        code="unsupported_content",
    )


def _text(blocks: list[Block], where: str) -> str:
    for index, block in enumerate(blocks):
        if block.type != "text":
            raise _unsupported(block, f"{where}.{index}")
    return "\n\n".join(block.text or "" for block in blocks)


def _system(body: MessagesRequest) -> list[str]:
    if body.system is None:
        return []
    if isinstance(body.system, str):
        return [body.system]
    return [_text(body.system, "system")]


def _with_cache_point(message: ChatMessage) -> ChatMessage:
    from dataclasses import replace

    return replace(message, cache_point=True)


def _cache_points(body: MessagesRequest, automatic: bool) -> frozenset[Any]:
    points = set()
    if automatic or (
        isinstance(body.system, list) and any(block.cache_control for block in body.system)
    ):
        points.add("system")
    if automatic or any(tool.cache_control for tool in body.tools or ()):
        points.add("tools")
    return frozenset(points)


def _tools(body: MessagesRequest) -> Tools:
    functions = []
    for index, tool in enumerate(body.tools or ()):
        if tool.type not in (None, "custom"):
            raise BadRequestException(
                f"tools.{index}.type: {tool.type[:48]!r} is a server tool, not served here: "
                "offer client tools (a name and an input_schema)",
                param=f"tools.{index}.type",
                code="unsupported_parameter",
            )
        schema = tool.input_schema or {"type": "object", "properties": {}}
        check_depth(schema, f"tools.{index}.input_schema")
        functions.append(FunctionTool(tool.name, tool.description or "", schema))
    choice = body.tool_choice
    if choice is None:
        return Tools(tuple(functions))
    if choice.type == "tool" and not choice.name:
        raise BadRequestException("tool_choice.name: required with type tool", param="tool_choice")
    mode = {"auto": "auto", "any": "required", "tool": "required", "none": "none"}[choice.type]
    return Tools(
        tuple(functions),
        mode,  # type: ignore[arg-type]  # one of the three, by the map
        choice.name or "" if choice.type == "tool" else "",
        not choice.disable_parallel_tool_use,
    )


def _output_format(body: MessagesRequest) -> OutputFormat:
    config = body.output_config
    if config is None or config.format is None:
        return OutputFormat()
    schema = config.format.get("schema")
    if config.format.get("type") != "json_schema" or not isinstance(schema, dict):
        raise BadRequestException(
            "output_config.format: a json_schema with a schema object", param="output_config.format"
        )
    spec = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    return parse_output_format(spec, "output_config.format")


Effort = Literal["low", "medium", "high"]
EFFORTS: dict[str, Effort] = {"low": "low", "medium": "medium", "high": "high", "max": "high"}


def _reasoning(body: MessagesRequest) -> Reasoning | None:
    """`thinking` and `output_config.effort` as the turn's reasoning (see the module)."""
    thinking, config = body.thinking, body.output_config
    effort = EFFORTS.get(config.effort) if config and config.effort else None
    shown = not (thinking and thinking.display == "omitted")
    if thinking is not None and thinking.type == "enabled":
        if thinking.budget_tokens is None:
            raise BadRequestException(
                "thinking.budget_tokens: required when thinking is enabled",
                param="thinking.budget_tokens",
            )
        return Reasoning(
            effort=effort,
            budget_tokens=thinking.budget_tokens,
            shown=shown,
            param="thinking",
        )
    if (thinking is not None and thinking.type == "adaptive") or effort is not None:
        return Reasoning(effort=effort, adaptive=True, shown=shown, param="thinking")
    return None


def _cleared(messages: list[ChatMessage], management: dict[str, Any] | None) -> list[ChatMessage]:
    """`context_management`'s thinking edits applied; any other edit refused by name."""
    from dataclasses import replace

    for index, edit in enumerate((management or {}).get("edits") or []):
        where = f"context_management.edits.{index}"
        if not isinstance(edit, dict) or edit.get("type") != KNOWN_EDITS:
            raise BadRequestException(
                f"{where}.type: only {KNOWN_EDITS} is supported", param=f"{where}.type"
            )
        keep = edit.get("keep", "all")
        if keep == "all":
            continue
        turns = keep.get("value") if isinstance(keep, dict) else None
        if not isinstance(turns, int) or turns < 0:
            raise BadRequestException(
                f'{where}.keep: "all" or {{"type": "thinking_turns", "value": N}}',
                param=f"{where}.keep",
            )
        thinking = [i for i, m in enumerate(messages) if m.role == "assistant" and m.thoughts]
        for at in thinking[: max(0, len(thinking) - turns)]:
            messages[at] = replace(messages[at], thoughts=())
    return messages


def new_id() -> str:
    """A message id in Anthropic's style."""
    return f"msg_{uuid.uuid4().hex}"


def message_object(message_id: str, model: str, outcome: Outcome, shown: bool) -> MessageObject:
    """The answer, as the caller named its model; thinking's text only if `shown`."""
    generation = outcome.generation
    content = [thinking_block(t, shown) for t in generation.thoughts]
    if generation.text or not generation.tool_calls:
        content.append({"type": "text", "text": generation.text})
    content += [tool_use_block(call) for call in generation.tool_calls]
    return MessageObject(
        id=message_id,
        model=model,
        content=content,
        stop_reason=stop_reason(generation),
        stop_sequence=None,
        usage=usage_of(generation),
    )


def thinking_block(thought: Thought, shown: bool) -> dict[str, Any]:
    """A `thinking` block (or `redacted_thinking`), sealed to come back (`core/thoughts.py`)."""
    if thought.redacted:
        return {"type": "redacted_thinking", "data": seal_of(thought)}
    return {
        "type": "thinking",
        "thinking": thought.text if shown else "",
        "signature": seal_of(thought),
    }


def tool_use_block(call: ToolCall) -> dict[str, Any]:
    """A call as a `tool_use` block (its arguments an object, as Anthropic's are)."""
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = {}
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def stop_reason(generation: Generation) -> StopReason:
    """Why the model stopped, in Anthropic's words."""
    if generation.finish_reason == "stop" and generation.stop_sequence is not None:
        return "stop_sequence"
    return STOP_REASONS.get(generation.finish_reason, "end_turn")


def usage_of(generation: Generation) -> Usage:
    """Anthropic's usage: input is what was neither read from nor written to the cache."""
    cached, written = generation.cached_input_tokens, generation.cache_write_tokens
    return Usage(
        input_tokens=max(0, generation.input_tokens - cached - written),
        output_tokens=generation.output_tokens,
        cache_creation_input_tokens=written,
        cache_read_input_tokens=cached,
    )
