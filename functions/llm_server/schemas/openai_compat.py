"""OpenAI's wire format for the compatible endpoints: requests (pydantic) and response builders.

Only what a chat needs is modelled; other OpenAI parameters are accepted and ignored, as
OpenAI-compatible servers commonly do. Text content only: image or audio parts are a 400.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_server.exceptions import ValidationException
from llm_server.providers.base import ChatMessage, Generation
from llm_server.schemas.chat import Text

MessageRole = Literal["system", "developer", "user", "assistant"]
TEXT_PART_TYPES = {"text", "input_text", "output_text"}


class ContentPart(BaseModel):
    """A part of a message's content; only text parts are supported."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: Text | None = None


class InputMessage(BaseModel):
    """A message of a chat completion's `messages` or a response's `input`."""

    model_config = ConfigDict(extra="allow")

    role: MessageRole
    content: Text | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    """`stream_options` of a chat completion."""

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: Text = Field(min_length=1, max_length=128)
    messages: list[InputMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only 1 is supported.")


class ResponsesRequest(BaseModel):
    """`POST /v1/responses`."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: Text = Field(min_length=1, max_length=128)
    input: Text | list[InputMessage] = Field(min_length=1)
    instructions: Text | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_output_tokens: int | None = Field(None, ge=1)
    stream: bool = False


def split_messages(
    messages: list[InputMessage], param: str, instructions: str | None = None
) -> tuple[str, tuple[ChatMessage, ...]]:
    """System and developer messages become the instructions; the rest, the conversation."""
    system = [instructions] if instructions else []
    turns: list[ChatMessage] = []
    for index, message in enumerate(messages):
        text = _text_of(message, f"{param}.{index}.content")
        if message.role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(ChatMessage("user" if message.role == "user" else "assistant", text))
    if not turns:
        raise ValidationException(
            f"{param} needs at least one user or assistant message", param=param, status_code=400
        )
    return "\n\n".join(part for part in system if part), tuple(turns)


def _text_of(message: InputMessage, param: str) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    texts = []
    for part in message.content:
        if part.type not in TEXT_PART_TYPES or part.text is None:
            raise ValidationException(
                f"{param}: only text content is supported, not {part.type[:32]!r}",
                param=param,
                status_code=400,
            )
        texts.append(part.text)
    return "".join(texts)


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: `chatcmpl-...`, `resp_...`."""
    return f"{prefix}{uuid.uuid4().hex}"


def chat_completion(completion_id: str, generation: Generation) -> dict[str, Any]:
    """A `chat.completion` object."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(generation.created_at.timestamp()),
        "model": generation.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generation.text, "refusal": None},
                "logprobs": None,
                "finish_reason": generation.finish_reason,
            }
        ],
        "usage": usage_of(generation),
    }


def chat_chunk(
    completion_id: str,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A `chat.completion.chunk`; `delta=None` makes the usage-only final chunk."""
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    )
    chunk = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def usage_of(generation: Generation) -> dict[str, int]:
    """Chat Completions' usage object."""
    return {
        "prompt_tokens": generation.input_tokens,
        "completion_tokens": generation.output_tokens,
        "total_tokens": generation.total_tokens,
    }


def response_object(
    response_id: str,
    model: str,
    request: ResponsesRequest,
    generation: Generation | None = None,
) -> dict[str, Any]:
    """A `response` object: in progress (no generation yet) or completed/incomplete."""
    status = "in_progress"
    if generation is not None:
        status = "incomplete" if generation.finish_reason == "length" else "completed"
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(generation.created_at.timestamp()) if generation else int(time.time()),
        "status": status,
        "model": generation.model if generation else model,
        "output": [output_message(response_id, generation.text)] if generation else [],
        "instructions": request.instructions,
        "temperature": request.temperature,
        "max_output_tokens": request.max_output_tokens,
        "top_p": 1.0,
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "text": {"format": {"type": "text"}},
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "error": None,
        "metadata": {},
        "usage": _responses_usage(generation) if generation else None,
    }


def output_message(response_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    """The assistant message item of a response's `output`."""
    return {
        "type": "message",
        "id": f"msg_{response_id.removeprefix('resp_')}",
        "status": status,
        "role": "assistant",
        "content": [output_text(text)] if status == "completed" else [],
    }


def output_text(text: str) -> dict[str, Any]:
    """An `output_text` content part."""
    return {"type": "output_text", "text": text, "annotations": []}


def _responses_usage(generation: Generation) -> dict[str, Any]:
    return {
        "input_tokens": generation.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": generation.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": generation.total_tokens,
    }


def openai_error(message: str, error_type: str, code: str, param: str | None) -> dict[str, Any]:
    """OpenAI's error body, which the SDK turns into its exception classes."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
