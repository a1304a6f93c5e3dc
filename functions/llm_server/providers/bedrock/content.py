"""Our messages as Converse turns: text, images, documents, tool calls and results, thinking.

- Messages become Converse turns, consecutive turns of one role merged (Converse requires
  alternation); an assistant's tool calls are `toolUse` blocks, all of them; tool results are
  `toolResult` blocks (`status: error` when the tool failed) in the user turn that follows.
- Converse refuses `toolUse`/`toolResult` blocks without a `toolConfig`: a request that offers
  no tools sends its tool turns as text instead.
- Images and documents are inline blocks from the request's own bytes: the server fetches
  nothing a caller points at. Documents take Converse's formats and names.
- An assistant's thinking goes back as `reasoningContent` blocks, first in its turn, when this
  request thinks too (Claude refuses a tool loop that drops its signed thinking); only thoughts
  Bedrock made go back (another provider's seal means nothing here).
- A message the caller marked for caching is followed by a `cachePoint`, on families that take
  one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from llm_server.exceptions import BadRequestException
from llm_server.providers.bedrock.models import DOCUMENT_FORMATS
from llm_server.values import ChatMessage, Document, Thought, ToolCall

CACHE_POINT = {"cachePoint": {"type": "default"}}
SOURCE = "bedrock"  # the `source` of the thoughts this provider makes
IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_DATA_URL = re.compile(r"^data:image/(?P<kind>[a-z]+);base64,(?P<data>.*)$", re.DOTALL)
_NAME_UNFIT = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")


def converse_messages(
    messages: tuple[ChatMessage, ...], tools_on: bool, thinking: bool = False, caching: bool = False
) -> list[dict[str, Any]]:
    """Converse turns: user and tool results as `user`, consecutive turns of a role merged.

    `thinking`: this request thinks, so earlier thoughts go back; `caching`: the model takes
    cache points, so a message marked for caching is followed by one.
    """
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message, tools_on, thinking)
        if not blocks:
            continue
        if caching and message.cache_point:
            blocks.append(CACHE_POINT)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: ChatMessage, tools_on: bool, thinking: bool) -> list[dict[str, Any]]:
    """One message's content blocks (Converse refuses blank text: it is left out)."""
    if message.role == "tool":
        return [_result(message, tools_on)]
    blocks: list[dict[str, Any]] = []
    if thinking:
        blocks += [_thought(t) for t in message.thoughts if t.source == SOURCE]
    if message.content.strip():
        blocks.append({"text": message.content})
    blocks += [image_block(url) for url in message.images]
    blocks += [_document(document) for document in message.documents]
    for call in message.tool_calls:
        if tools_on:
            use = {"toolUseId": call.id, "name": call.name, "input": _input(call)}
            blocks.append({"toolUse": use})
        else:
            blocks.append({"text": f"[called tool {call.name} ({call.id}) with {call.arguments}]"})
    return blocks


def _result(message: ChatMessage, tools_on: bool) -> dict[str, Any]:
    if not tools_on:
        return {"text": f"[result of tool call {message.tool_call_id}]\n{message.content}"}
    content: list[dict[str, Any]] = [{"text": message.content}] if message.content.strip() else []
    content += [image_block(url) for url in message.images]
    result: dict[str, Any] = {
        "toolUseId": message.tool_call_id,
        "content": content or [{"json": {}}],
    }
    if message.is_error:
        result["status"] = "error"
    return {"toolResult": result}


def _thought(thought: Thought) -> dict[str, Any]:
    if thought.redacted:
        return {"reasoningContent": {"redactedContent": base64.b64decode(thought.redacted)}}
    text = {"text": thought.text, "signature": thought.seal}
    return {"reasoningContent": {"reasoningText": text}}


def read_thought(content: dict[str, Any]) -> Thought:
    """A `reasoningContent` block of an answer as a thought to send back."""
    if "redactedContent" in content:
        return Thought(SOURCE, redacted=base64.b64encode(content["redactedContent"]).decode())
    text = content.get("reasoningText") or {}
    return Thought(SOURCE, text.get("text", ""), text.get("signature", ""))


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


def image_block(url: str) -> dict[str, Any]:
    """An `image` block from a data URL (any other URL is refused by name)."""
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


def _document(document: Document) -> dict[str, Any]:
    kind = DOCUMENT_FORMATS.get(document.media_type)
    if kind is None:
        names = ", ".join(sorted(set(DOCUMENT_FORMATS.values())))
        raise BadRequestException(
            f"document: Bedrock reads {names}, not {document.media_type[:64]!r}",
            param="document",
            code="unsupported_content",
        )
    name = " ".join(_NAME_UNFIT.sub(" ", document.name).split())[:200] or "document"
    return {"document": {"format": kind, "name": name, "source": {"bytes": document.data}}}
