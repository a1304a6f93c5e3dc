"""OpenAI's wire format for the compatible endpoints, typed: requests, responses, stream events.

The request models hold what this server honours; `parameters.py` refuses by name, with a 400,
any other parameter that would change the answer. Text, image and file content parts. The response
models are what the routes declare, so `/openapi.json` describes every `/v1` answer.
`translate.py` builds them from a turn's `Outcome`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_server.core.text import Text

MessageRole = Literal["system", "developer", "user", "assistant"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
TEXT_PART_TYPES = {"text", "input_text", "output_text"}
IMAGE_PART_TYPES = {"image_url", "input_image"}


class FileFields(BaseModel):
    """A file, inline (`file_data`, a data URL) or by reference (`file_id`, `file_url`)."""

    model_config = ConfigDict(extra="allow")

    file_data: Text | None = None
    file_id: Text | None = None
    file_url: Text | None = None
    filename: Text | None = None


class ContentPart(FileFields):
    """A part of a message's content: text, an image (`image_url` / `input_image`), or a file.

    Chat completions' `file` part holds its fields in `file`; the Responses API's
    `input_file` holds them in the part itself.
    """

    type: str
    text: Text | None = None
    image_url: Text | dict[str, Any] | None = None
    file: FileFields | None = None


class CalledFunction(BaseModel):
    """The function a chat completion's tool call names, and its arguments as JSON text."""

    name: Text = Field(pattern=FUNCTION_NAME)
    arguments: Text


class ChatToolCall(BaseModel):
    """A tool call of an assistant message (in a reply, or sent back in `messages`)."""

    id: Text = Field(min_length=1, max_length=128)
    type: Literal["function"] = "function"
    function: CalledFunction


class InputMessage(BaseModel):
    """A message of a chat completion's `messages`: `tool` ones answer a call by its id."""

    model_config = ConfigDict(extra="allow")

    role: Literal[MessageRole, "tool"]
    content: Text | list[ContentPart] | None = None
    tool_calls: list[ChatToolCall] | None = None
    tool_call_id: Text | None = Field(None, max_length=128)
    reasoning_content: Text | None = None  # what the model reasoned (its text: not sent back)
    thinking_blocks: list[dict[str, Any]] | None = None  # the same, sealed, to send back


class InputItem(BaseModel):
    """An item of a response's `input`: a message, a `function_call` or its output."""

    model_config = ConfigDict(extra="allow")

    type: Literal[
        "message", "function_call", "function_call_output", "reasoning", "item_reference"
    ] = "message"
    id: Text | None = Field(None, max_length=256)  # an item_reference's (and a kept item's)
    role: MessageRole | None = None
    content: Text | list[ContentPart] | None = None
    call_id: Text | None = Field(None, min_length=1, max_length=128)
    name: Text | None = Field(None, pattern=FUNCTION_NAME)
    arguments: Text | None = None
    output: Text | None = None
    summary: list[dict[str, Any]] | None = None  # a reasoning item's
    encrypted_content: Text | None = None  # a reasoning item's seal, to continue from it


class FunctionDefinition(BaseModel):
    """A function tool: name, what it is for, and its parameters' JSON schema."""

    name: Text = Field(pattern=FUNCTION_NAME)
    description: Text | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(BaseModel):
    """A chat completion's tool (functions only)."""

    type: Literal["function"]
    function: FunctionDefinition


class ResponsesTool(FunctionDefinition):
    """A Responses API tool (functions only: hosted tools run at OpenAI, not here)."""

    type: Literal["function"]


class NamedFunction(BaseModel):
    """The function a chat completion's `tool_choice` forces."""

    name: Text = Field(pattern=FUNCTION_NAME)


class ChatToolChoice(BaseModel):
    """`tool_choice: {"type": "function", "function": {"name": ...}}`."""

    type: Literal["function"]
    function: NamedFunction


class ResponsesToolChoice(BaseModel):
    """`tool_choice: {"type": "function", "name": ...}`."""

    type: Literal["function"]
    name: Text = Field(pattern=FUNCTION_NAME)


ToolChoiceMode = Literal["none", "auto", "required"]


class ReasoningConfig(BaseModel):
    """A Responses request's `reasoning`: how hard to think, and whether to summarise it."""

    effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


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
    tools: list[ChatTool] | None = Field(None, max_length=128)
    tool_choice: ToolChoiceMode | ChatToolChoice | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None


class ResponsesRequest(BaseModel):
    """`POST /v1/responses`."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: Text = Field(min_length=1, max_length=128)
    input: Text | list[InputItem] = Field(min_length=1)
    instructions: Text | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_output_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    tools: list[ResponsesTool] | None = Field(None, max_length=128)
    tool_choice: ToolChoiceMode | ResponsesToolChoice | None = None
    parallel_tool_calls: bool | None = None
    store: bool = True
    previous_response_id: Text | None = Field(None, min_length=1, max_length=128)
    include: list[Literal["message.output_text.logprobs", "reasoning.encrypted_content"]] | None = (
        None
    )
    top_logprobs: int | None = Field(None, ge=0, le=20)
    reasoning: ReasoningConfig | None = None
    conversation: Text | dict[str, Any] | None = None
    background: bool = False


# Responses: Chat Completions


class AssistantMessage(BaseModel):
    """The reply message of a chat completion: text, or tool calls (`content` then null)."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ChatToolCall] | None = Field(None, exclude_if=lambda calls: calls is None)
    reasoning_content: str | None = Field(None, exclude_if=lambda text: text is None)
    thinking_blocks: list[dict[str, Any]] | None = Field(None, exclude_if=lambda b: b is None)


class TopLogprob(BaseModel):
    """A likely token at a place in the reply, and its log probability."""

    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    """A reply token's log probability and the likeliest tokens at its place."""

    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    """A choice's log probabilities, token by token."""

    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


class ChatChoice(BaseModel):
    """The one choice of a chat completion (`n` is 1)."""

    index: int = 0
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason


class PromptTokensDetails(BaseModel):
    """Prompt tokens read from the provider's prompt cache (Bedrock's cache points)."""

    cached_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    """Completion tokens the model spent reasoning (within `completion_tokens`)."""

    reasoning_tokens: int = 0


class CompletionUsage(BaseModel):
    """Chat Completions' token usage."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = Field(
        default_factory=CompletionTokensDetails
    )


class ChatCompletion(BaseModel):
    """A `chat.completion` object."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage


class ChunkToolCall(ChatToolCall):
    """A tool call in a chunk: each is sent whole, at its `index`."""

    index: int


class ChunkDelta(BaseModel):
    """What a chunk adds to the message."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ChunkToolCall] | None = None
    reasoning_content: str | None = None
    thinking_blocks: list[dict[str, Any]] | None = None


class ChunkChoice(BaseModel):
    """The one choice of a chunk."""

    index: int = 0
    delta: ChunkDelta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


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
