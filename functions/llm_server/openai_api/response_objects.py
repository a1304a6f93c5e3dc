"""The Responses API's objects, typed: a `response`, its output items and usage, its events.

To the published OpenAPI document and the Open Responses types (see
tests/openai/test_protocol_compliance.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_server.openai_api.protocol import TokenLogprob


class OutputText(BaseModel):
    """An `output_text` content part; `logprobs` are filled when `include` asks for them."""

    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[TokenLogprob] = Field(default_factory=list)


class OutputMessage(BaseModel):
    """The assistant message item of a response's `output`."""

    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class FunctionCallItem(BaseModel):
    """A `function_call` item of a response's `output`: the model calls a function tool."""

    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"] = "completed"


class SummaryText(BaseModel):
    """A part of a reasoning item's summary."""

    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningText(BaseModel):
    """A part of a reasoning item's content: the reasoning itself (Claude's thinking)."""

    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class ReasoningItem(BaseModel):
    """A `reasoning` item of a response's `output`: what the model reasoned before it answered.

    OpenAI's models give a summary; Claude's thinking is its `content`. `encrypted_content`
    (when `include` asks for it) carries the reasoning back in a later request's `input`.
    """

    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = Field(None, exclude_if=lambda parts: parts is None)
    encrypted_content: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] = "completed"


class InputTokensDetails(BaseModel):
    """Input tokens read from or written to a prompt cache (none here)."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    """Output tokens the model spent reasoning."""

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

    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(BaseModel):
    """Why a (background) response failed."""

    code: str
    message: str


class ResponseObject(BaseModel):
    """A `response` object: in progress (no output yet), completed or incomplete.

    Every field the published OpenAPI document and the Open Responses specification require,
    saying what this server does (no reasoning, no truncation) and echoing what the request set.
    """

    id: str
    object: Literal["response"] = "response"
    created_at: int
    completed_at: int | None = None
    status: Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]
    model: str
    output: list[ReasoningItem | OutputMessage | FunctionCallItem]
    instructions: str | None
    temperature: float
    top_p: float
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int = 0
    max_output_tokens: int | None
    max_tool_calls: int | None = None
    previous_response_id: str | None = None
    conversation: dict[str, str] | None = Field(None, exclude_if=lambda value: value is None)
    reasoning: dict[str, Any] | None = None
    tools: list[Any] = Field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    truncation: Literal["disabled"] = "disabled"
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    store: bool = True
    background: bool = False
    service_tier: str = "default"
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    incomplete_details: IncompleteDetails | None = None
    error: ResponseError | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    usage: ResponseUsage | None = None


class ResponseEvent(BaseModel):
    """One event of a streamed response: its `type`, its place, and the fields of that type."""

    model_config = ConfigDict(extra="allow")

    type: str
    sequence_number: int
