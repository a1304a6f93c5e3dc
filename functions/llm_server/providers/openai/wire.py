"""The Responses API on the wire: our request as `responses.create` JSON, its answer as ours.

Reasoning is OpenAI's own: `reasoning` (`effort`, `summary`) on the request, with `include:
reasoning.encrypted_content` always (so a turn can continue statelessly: `store` is false), and
the answer's `reasoning` items as thoughts (their summary text, their encrypted content), sent
back before the message or calls they preceded. Another provider's thoughts are not sent.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

from llm_server.providers.openai.errors import malformed
from llm_server.values import (
    ChatMessage,
    Document,
    Generation,
    GenerationRequest,
    Thought,
    TokenLogprob,
    ToolCall,
    Tools,
)

SOURCE = "openai"  # the `source` of the thoughts this provider makes
_REASONERS = re.compile(r"^(o\d|gpt-5|codex)")
"""OpenAI's reasoning models: an adaptive request (the model decides) reaches only these, where
one asked outright reaches any model (OpenAI refuses it by name where the model cannot)."""


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
    include = []
    if options.logprobs is not None:
        include.append("message.output_text.logprobs")
        body["top_logprobs"] = options.logprobs
    reasoning = options.reasoning
    if reasoning is not None and (not reasoning.adaptive or _REASONERS.match(request.model)):
        asked = {"effort": reasoning.effort, "summary": reasoning.summary}
        body["reasoning"] = {key: value for key, value in asked.items() if value}
        include.append("reasoning.encrypted_content")
    if include:
        body["include"] = include
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
        output_details = usage.get("output_tokens_details") or {}
        return Generation(
            text=_output_text(body.get("output") or ()),
            model=str(body["model"]),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),  # reasoning tokens included
            reasoning_tokens=int(output_details.get("reasoning_tokens") or 0),
            thoughts=tuple(map(thought_of, _of_type(body.get("output") or (), "reasoning"))),
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


def thought_of(item: dict[str, Any]) -> Thought:
    """A `reasoning` output item as a thought: its summary's text, its encrypted content."""
    summary = "".join(part.get("text") or "" for part in item.get("summary") or ())
    seal = item.get("encrypted_content") or ""
    return Thought(SOURCE, summary, str(seal), id=str(item.get("id") or ""), summary=True)


def _of_type(output: Any, kind: str) -> list[dict[str, Any]]:
    return [item for item in output if item.get("type") == kind]


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

    Plain text, or text with `input_image` and `input_file` parts (a text document inlined); a
    tool result is a `function_call_output`; an assistant's own reasoning goes first, its calls
    after its text as `function_call` items.
    """
    if message.role == "tool":
        return [_tool_output(message)]
    thoughts = [_reasoning_item(t) for t in message.thoughts if t.source == SOURCE and t.seal]
    calls = [
        {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
        for c in message.tool_calls
    ]
    if not message.content and calls:
        return [*thoughts, *calls]
    if not (message.images or message.documents):
        return [*thoughts, {"role": message.role, "content": message.content}, *calls]
    return [*thoughts, {"role": message.role, "content": _parts(message)}, *calls]


def _parts(message: ChatMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": message.content}]
    parts += [{"type": "input_image", "image_url": url, "detail": "auto"} for url in message.images]
    return parts + [_file_part(document) for document in message.documents]


def _file_part(document: Document) -> dict[str, Any]:
    text = document.text
    if text is not None:
        return {"type": "input_text", "text": f"[{document.name}]\n{text}"}
    data = base64.b64encode(document.data).decode()
    url = f"data:{document.media_type};base64,{data}"
    return {"type": "input_file", "filename": document.name, "file_data": url}


def _tool_output(message: ChatMessage) -> dict[str, Any]:
    """A tool's result; with images, as the parts a `function_call_output` takes."""
    output: Any = message.content
    if message.images:
        output = [{"type": "input_text", "text": message.content}]
        output += [{"type": "input_image", "image_url": url} for url in message.images]
    return {"type": "function_call_output", "call_id": message.tool_call_id, "output": output}


def _reasoning_item(thought: Thought) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": thought.text}] if thought.text else []
    item = {"type": "reasoning", "summary": summary, "encrypted_content": thought.seal}
    return {**item, "id": thought.id} if thought.id else item
