"""The public contract of `POST /api/v1/chat`: request, response and error bodies (pydantic v2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, field_validator

from llm_server.core.formats import parse_output_format
from llm_server.core.text import Text, clean_text
from llm_server.exceptions import LLMServerException
from llm_server.stores.sessions import StoredTurn

KeySourceName = Literal["user", "server", "none"]


class HistoryMessage(BaseModel):
    """One earlier turn written as an object."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: Text


def _history_entry(value: object) -> str | HistoryMessage:
    """Accept a string or a `{role, content}` object, with one clear message for anything else."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        role, content = value.get("role"), value.get("content")
        if role in ("user", "assistant") and isinstance(content, str) and len(value) == 2:
            return HistoryMessage(role=role, content=clean_text(content))
        raise ValueError(
            'an object entry needs exactly "role" ("user" or "assistant") and "content" (a string)'
        )
    raise ValueError("each entry must be a string or an object {role, content}")


HistoryEntry = Annotated[
    str | HistoryMessage,
    PlainValidator(_history_entry, json_schema_input_type=str | HistoryMessage),
]


class ChatRequest(BaseModel):
    """A chat request. Omitted numbers and model fall back to the server's DEFAULT_* settings."""

    model_config = ConfigDict(
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "session_id": "demo-1",
                    "user_message": "안녕하세요! 자기소개를 해 주세요.",
                    "role": "친절한 여행 가이드",
                    "memory_context": ["사용자는 서울에 산다"],
                    "instructions": "두 문장 이내로 답하세요.",
                    "conversation_history": ["user: 안녕", "assistant: 안녕하세요!"],
                    "max_tokens": 64,
                    "temperature": 0.7,
                }
            ]
        },
    )

    session_id: Text = Field("", max_length=256, description="Echoed back in the response.")
    system_message: Text = Field("", description="Replaces DEFAULT_SYSTEM_MESSAGE when not empty.")
    user_message: Text = Field(
        "",
        validate_default=True,  # so a request without it is rejected, naming the field
        description="The message to answer. Required, not blank.",
    )
    role: Text = Field("", description="A role for the assistant, added as a `## Role` section.")
    instructions: Text = Field("", description="Added as an `## Instructions` section.")
    conversation_history: list[HistoryEntry] = Field(
        default_factory=list,
        description='Earlier turns: "user: ..."/"assistant: ..." strings, plain strings '
        "(alternating, user first) or {role, content} objects.",
    )
    memory_context: list[Text] = Field(
        default_factory=list, description="Facts listed in a `## Memory` section."
    )
    max_tokens: int | None = Field(
        None, ge=1, strict=True, description="Reply length cap (default DEFAULT_MAX_TOKENS, 1000)."
    )
    temperature: float | None = Field(
        None, ge=0.0, le=2.0, description="Sampling temperature 0..2 (default 0.7)."
    )
    model: (
        Annotated[str, Field(min_length=1, max_length=128), AfterValidator(clean_text)] | None
    ) = Field(None, description="Model name (default DEFAULT_MODEL).")
    openai_api_key: str = Field("", description="The caller's OpenAI key; never echoed or logged.")
    free_mode: bool = Field(False, strict=True, description="Allow the server's own key.")
    stream: bool = Field(
        False, strict=True, description="Answer with Server-Sent Events: deltas, then the result."
    )
    response_format: str | dict[str, Any] | None = Field(
        None,
        description='The reply\'s format: "text" (the default), "json_object", or '
        '{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}. The response\'s '
        "`output_format` says which was produced.",
    )

    @field_validator("response_format", mode="after")
    @classmethod
    def _known_format(cls, value: object) -> object:
        if value is not None:
            try:
                parse_output_format(value, "response_format")
            except LLMServerException as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("user_message", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("user_message must not be empty or only whitespace")
        return value


class ChatResponse(BaseModel):
    """A chat reply, or (with `success: false`) the shape every error body shares."""

    session_id: str = ""
    response_text: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens_used: int = 0
    output_format: str = "text"
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    temperature: float | None = None
    instructions: str = ""
    response_time: float = 0.0
    success: bool = True
    error_message: str | None = None
    api_key_source: KeySourceName = "none"


class ErrorDetail(BaseModel):
    """Machine-readable part of an error: a stable `type` and `code`, and the field at fault."""

    type: str
    code: str
    message: str
    param: str | None = None


class ErrorResponse(ChatResponse):
    """Every error body: the chat response shape with `success: false`, plus `error`."""

    success: bool = False
    error: ErrorDetail


class SessionResponse(BaseModel):
    """A page of a session's turns, oldest first; `next_cursor` is null on the last page."""

    session_id: str
    turns: list[StoredTurn]
    next_cursor: str | None = None
