"""Anthropic's Messages API, typed: the request (`POST /v1/messages`) and the message answered.

The request models hold what a caller may send; `translate.py` honours each field or refuses it
by name (a 400 naming it), and says in its docstrings why a field Claude Code sends is safe to
pass over where a provider has no use for it. Content blocks are one loose model, read by type.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_server.core.text import Text

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"]


class Block(BaseModel):
    """A content block of a message, read by its type.

    `text`, `image`, `document`, `tool_use`, `tool_result`, `thinking`, `redacted_thinking`.
    """

    model_config = ConfigDict(extra="allow")

    type: str
    text: Text | None = None
    source: dict[str, Any] | None = None
    title: Text | None = None
    id: Text | None = Field(None, max_length=256)
    name: Text | None = None
    input: dict[str, Any] | None = None
    tool_use_id: Text | None = Field(None, max_length=256)
    content: Text | list[Block] | None = None
    is_error: bool | None = None
    thinking: Text | None = None
    signature: Text | None = None
    data: Text | None = None
    cache_control: dict[str, Any] | None = None


class Message(BaseModel):
    """A turn of `messages` (a `system` one is what Claude Code sends mid-conversation)."""

    role: Literal["user", "assistant", "system"]
    content: Text | list[Block]


class Tool(BaseModel):
    """A client tool: its name, what it is for and its input's JSON schema."""

    model_config = ConfigDict(extra="allow")

    name: Text = Field(pattern=r"^[a-zA-Z0-9_-]{1,128}$")
    description: Text | None = None
    input_schema: dict[str, Any] | None = None
    type: Text | None = None
    cache_control: dict[str, Any] | None = None
    defer_loading: bool | None = None


class ToolChoice(BaseModel):
    """`auto`, `any` (some tool), `tool` (the one named) or `none`."""

    type: Literal["auto", "any", "tool", "none"]
    name: Text | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(BaseModel):
    """Extended thinking: `enabled` with a budget, `adaptive` (the model decides), `disabled`."""

    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=1)
    display: Literal["summarized", "omitted", "full"] | None = None


class OutputConfig(BaseModel):
    """How the answer is made: the effort it may take, and a JSON schema it must follow."""

    effort: Literal["low", "medium", "high", "max"] | None = None
    format: dict[str, Any] | None = None


class MessagesRequest(BaseModel):
    """`POST /v1/messages` (and `/v1/messages/count_tokens`, which needs no `max_tokens`)."""

    model_config = ConfigDict(extra="allow")

    model: Text = Field(min_length=1, max_length=256)
    messages: list[Message]
    max_tokens: int | None = Field(None, ge=1)
    system: Text | list[Block] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    stop_sequences: list[Text] | None = None
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1)
    metadata: dict[str, Any] | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    cache_control: dict[str, Any] | None = None
    service_tier: Text | None = None
    context_management: dict[str, Any] | None = None
    stream: bool = False


class Usage(BaseModel):
    """Tokens of the turn: input not cached, output (thinking included), cache writes, reads."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class MessageObject(BaseModel):
    """The assistant's message: its content blocks, why it stopped, and the usage."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[dict[str, Any]]
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage


class TokenCount(BaseModel):
    """`POST /v1/messages/count_tokens`: the input's tokens."""

    input_tokens: int


class ErrorDetail(BaseModel):
    """What went wrong: Anthropic's error type and a message naming the field or the cause."""

    type: str
    message: str


class ErrorBody(BaseModel):
    """Anthropic's error shape, which its SDK turns into its typed exceptions."""

    type: Literal["error"] = "error"
    error: ErrorDetail
