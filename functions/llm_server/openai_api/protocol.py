"""OpenAI's wire format for the compatible endpoints, typed: requests, responses, stream events.

The request models hold what this server honours; `parameters.py` refuses by name, with a 400,
any other parameter that would change the answer. Text and image content parts. The response
models are what the routes declare, so `/openapi.json` describes every `/v1` answer.
`translate.py` builds them from a turn's `Outcome`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_server.core.text import Text

MessageRole = Literal["system", "developer", "user", "assistant"]
TEXT_PART_TYPES = {"text", "input_text", "output_text"}
IMAGE_PART_TYPES = {"image_url", "input_image"}


class ContentPart(BaseModel):
    """A part of a message's content: text, or an image (`image_url` / `input_image`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: Text | None = None
    image_url: Text | dict[str, Any] | None = None


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
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stop: Text | list[Text] | None = Field(None, max_length=4)
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    response_format: dict[str, Any] | None = None


class ResponsesRequest(BaseModel):
    """`POST /v1/responses`."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: Text = Field(min_length=1, max_length=128)
    input: Text | list[InputMessage] = Field(min_length=1)
    instructions: Text | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_output_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    top_p: float | None = Field(None, ge=0.0, le=1.0)


# Responses: Chat Completions


class AssistantMessage(BaseModel):
    """The reply message of a chat completion."""

    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class ChatChoice(BaseModel):
    """The one choice of a chat completion (`n` is 1)."""

    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop", "length"]


class CompletionUsage(BaseModel):
    """Chat Completions' token usage."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """A `chat.completion` object."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage


class ChunkDelta(BaseModel):
    """What a chunk adds to the message."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """The one choice of a chunk."""

    index: int = 0
    delta: ChunkDelta
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    """A `chat.completion.chunk` stream event (`choices` empty in the usage-only last one)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


# Errors and model lists


class OpenAIErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """OpenAI's error body, which the SDKs turn into their exception classes."""

    error: OpenAIErrorDetail


class ModelCard(BaseModel):
    """One model `/v1/models` lists."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """`GET /v1/models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
