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


# Responses: the Responses API


class OutputText(BaseModel):
    """An `output_text` content part (no log probabilities are computed: `logprobs` is empty)."""

    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(BaseModel):
    """The assistant message item of a response's `output`."""

    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class InputTokensDetails(BaseModel):
    """Input tokens read from or written to a prompt cache (none here)."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    """Reasoning tokens (none here)."""

    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    """The Responses API's token usage."""

    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(BaseModel):
    """Why a response stopped short."""

    reason: Literal["max_output_tokens"]


class ResponseObject(BaseModel):
    """A `response` object: in progress (no output yet), completed or incomplete.

    Every field the published OpenAPI document and the Open Responses specification require,
    saying what this server does: nothing is stored (`store: false`), no tools, no reasoning.
    """

    id: str
    object: Literal["response"] = "response"
    created_at: int
    completed_at: int | None = None
    status: Literal["in_progress", "completed", "incomplete"]
    model: str
    output: list[OutputMessage]
    instructions: str | None
    temperature: float
    top_p: float
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int = 0
    max_output_tokens: int | None
    max_tool_calls: int | None = None
    previous_response_id: str | None = None
    reasoning: dict[str, Any] | None = None
    tools: list[Any] = Field(default_factory=list)
    tool_choice: Literal["auto"] = "auto"
    parallel_tool_calls: bool = True
    truncation: Literal["disabled"] = "disabled"
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    store: bool = False
    background: bool = False
    service_tier: str = "default"
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    incomplete_details: IncompleteDetails | None = None
    error: None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    usage: ResponseUsage | None = None


class ResponseEvent(BaseModel):
    """One event of a streamed response: its `type`, its place, and the fields of that type."""

    model_config = ConfigDict(extra="allow")

    type: str
    sequence_number: int


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
