"""The Responses API on the wire: our request as `responses.create` JSON, its answer as ours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llm_server.providers.openai.errors import malformed
from llm_server.values import (
    ChatMessage,
    Generation,
    GenerationRequest,
    TokenLogprob,
    ToolCall,
    Tools,
)


def request_body(request: GenerationRequest) -> dict[str, Any]:
    """The `POST /responses` body (`responses.create`'s parameters), as JSON."""
    body: dict[str, Any] = {
        "model": request.model,
        "input": [item for m in request.messages for item in _items(m)],
        "temperature": request.temperature,
        "max_output_tokens": request.max_tokens,
    }
    if request.instructions:
        body["instructions"] = request.instructions
    options = request.options
    if options.top_p is not None:
        body["top_p"] = options.top_p
    output = options.output_format
    if output.type == "json_object":
        body["text"] = {"format": {"type": "json_object"}}
    elif output.type == "json_schema":
        schema = {"name": output.name or "answer", "schema": output.schema, "strict": output.strict}
        body["text"] = {"format": {"type": "json_schema", **schema}}
    if options.tools.functions:
        body.update(_tools(options.tools))
    if options.logprobs is not None:
        body["include"] = ["message.output_text.logprobs"]
        body["top_logprobs"] = options.logprobs
    return body


def _tools(tools: Tools) -> dict[str, Any]:
    """`tools`, `tool_choice` and `parallel_tool_calls` as the Responses API takes them."""
    functions = [
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description or None,
            "parameters": tool.schema,
            "strict": tool.strict,
        }
        for tool in tools.functions
    ]
    choice: Any = tools.choice
    if tools.name:
        choice = {"type": "function", "name": tools.name}
    return {"tools": functions, "tool_choice": choice, "parallel_tool_calls": tools.parallel}


def to_generation(body: Any, attempts: int) -> Generation:
    """A `Generation` from a Responses API `Response` as JSON; malformed if it is not one."""
    try:
        usage = body.get("usage") or {}
        details = body.get("incomplete_details") or {}
        text_format = (body.get("text") or {}).get("format") or {}
        calls = _tool_calls(body.get("output") or ())
        cut = details.get("reason") == "max_output_tokens"
        return Generation(
            text=_output_text(body.get("output") or ()),
            model=str(body["model"]),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),  # reasoning tokens included
            cached_input_tokens=int(
                (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
            ),
            output_format=text_format.get("type") or "text",
            created_at=datetime.fromtimestamp(body["created_at"], tz=UTC),
            temperature=body.get("temperature"),
            attempts=attempts,
            finish_reason="length" if cut else "tool_calls" if calls else "stop",
            tool_calls=calls,
            logprobs=_logprobs(body.get("output") or ()),
        )
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError, OSError):
        raise malformed() from None


def _output_text(output: Any) -> str:
    """The text of every `output_text` part of every message, joined (the SDK's `output_text`)."""
    return "".join(part.get("text") or "" for part in _text_parts(output))


def _text_parts(output: Any) -> list[dict[str, Any]]:
    return [
        part
        for item in output
        if item.get("type") == "message"
        for part in item.get("content") or ()
        if part.get("type") == "output_text"
    ]


def _logprobs(output: Any) -> tuple[TokenLogprob, ...]:
    """The token log probabilities of every `output_text` part, in order."""
    return tuple(
        _logprob(entry, [_logprob(top, []) for top in entry.get("top_logprobs") or ()])
        for part in _text_parts(output)
        for entry in part.get("logprobs") or ()
    )


def _logprob(entry: dict[str, Any], top: list[TokenLogprob]) -> TokenLogprob:
    return TokenLogprob(
        token=str(entry["token"]),
        logprob=float(entry["logprob"]),
        bytes=tuple(entry.get("bytes") or entry["token"].encode()),
        top_logprobs=tuple(top),
    )


def _tool_calls(output: Any) -> tuple[ToolCall, ...]:
    """The `function_call` items of a response's output."""
    return tuple(
        ToolCall(id=str(item["call_id"]), name=str(item["name"]), arguments=str(item["arguments"]))
        for item in output
        if item.get("type") == "function_call"
    )


def _items(message: ChatMessage) -> list[dict[str, Any]]:
    """A message as Responses API input items.

    Plain text, or text and `input_image` parts; a tool result is a `function_call_output`; an
    assistant's calls follow its text as `function_call` items.
    """
    if message.role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": message.tool_call_id,
                "output": message.content,
            }
        ]
    calls = [
        {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
        for c in message.tool_calls
    ]
    if not message.content and calls:
        return calls
    if not message.images:
        return [{"role": message.role, "content": message.content}, *calls]
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": message.content}]
    parts += [{"type": "input_image", "image_url": url, "detail": "auto"} for url in message.images]
    return [{"role": message.role, "content": parts}]
