"""The values every layer trades in: messages, tools, sampling options, requests and replies.

They sit below the providers, the stores and the APIs alike (a store keeps a `Generation`, an
adapter builds a `ChatMessage`, a provider answers a `GenerationRequest`), so none of those
layers needs another to name them. The provider interface is `providers/base.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr

Role = Literal["user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True)
class ToolCall:
    """A call of a function tool the model made: `arguments` is JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Thought:
    """What a model reasoned before it answered, kept to be sent back with its turn.

    `text` is the reasoning (Claude's thinking) or its summary (OpenAI's); `seal` is what its
    provider needs to accept it back: Claude's signature, or OpenAI's `encrypted_content`;
    `redacted` is Claude's redacted thinking (opaque). `source` names the provider that made it:
    a thought is sent back only to its own (another cannot read its seal), and `id` is OpenAI's
    item id. `summary`: the text is a summary of the reasoning (OpenAI's), not the reasoning.
    """

    source: str
    text: str = ""
    seal: str = ""
    redacted: str = ""
    id: str = ""
    summary: bool = False

    @property
    def size(self) -> int:
        """The bytes it sends upstream."""
        return len(self.text.encode()) + len(self.seal) + len(self.redacted) + len(self.id)


@dataclass(frozen=True)
class ThoughtDelta:
    """A streamed piece of reasoning: its text, or (`ended`) the whole thought it ends.

    `summary`: the text is a summary of the reasoning (OpenAI's), not the reasoning itself. A
    thought's seal comes only at its end, so `ended` carries the finished thought.
    """

    text: str = ""
    summary: bool = False
    ended: Thought | None = None


@dataclass(frozen=True)
class Document:
    """A file a message carries for the model to read: a PDF's bytes, or a text file's.

    `name` is what the caller called it; `media_type` its type (`application/pdf`,
    `text/plain`, ...). Only text ever reaches a model that reads text alone (inlined).
    `param` is the request part it came from (`messages.0.content.1`), for an error to name.
    """

    name: str
    media_type: str
    data: bytes
    param: str = "document"

    @property
    def text(self) -> str | None:
        """The document as text, if it is text (None for a PDF and other binary types)."""
        if not self.media_type.startswith("text/"):
            return None
        return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class ChatMessage:
    """One turn of the conversation sent to the model.

    A user message may carry `images`: URLs (`https://...` or `data:image/...;base64,...`), as
    OpenAI takes them, and `documents`. An assistant message may carry the `tool_calls` it made
    and the `thoughts` it had before them; a `tool` message is one call's result,
    `tool_call_id` naming the call (`is_error`: the tool failed). `cache_point`: the caller
    asked the provider to cache the prompt up to here (Anthropic's `cache_control`).
    """

    role: Role
    content: str
    images: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    thoughts: tuple[Thought, ...] = ()
    documents: tuple[Document, ...] = ()
    is_error: bool = False
    cache_point: bool = False

    @property
    def size(self) -> int:
        """Every byte the message sends upstream: text, images, documents, calls, thoughts."""
        calls = sum(len(c.id) + len(c.name) + len(c.arguments.encode()) for c in self.tool_calls)
        images = sum(len(url.encode()) for url in self.images)
        extra = sum(len(d.data) for d in self.documents) + sum(t.size for t in self.thoughts)
        return len(self.content.encode()) + images + calls + len(self.tool_call_id) + extra


@dataclass(frozen=True)
class TokenLogprob:
    """A reply token's log probability, with its UTF-8 `bytes` and the likeliest alternatives.

    `token` is the text of the bytes (a token that ends mid-character shows U+FFFD there).
    """

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top_logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class FunctionTool:
    """A function the model may call: its JSON schema `parameters` (None: no arguments)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool = False

    @property
    def schema(self) -> dict[str, Any]:
        """The parameters' schema; a function without parameters takes an empty object."""
        return self.parameters or {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Tools:
    """The tools a request offers and whether the model must call one.

    `choice` is OpenAI's `tool_choice`: `auto` (the model decides), `none`, or `required`; with
    `required`, `name` (when set) is the one function to call. `parallel`: several calls in one
    reply are allowed.
    """

    functions: tuple[FunctionTool, ...] = ()
    choice: Literal["auto", "none", "required"] = "auto"
    name: str = ""
    parallel: bool = True

    @property
    def offered(self) -> tuple[FunctionTool, ...]:
        """The functions the model may call in this reply: none, one (forced by name), or all."""
        if self.choice == "none":
            return ()
        if self.name:
            return tuple(tool for tool in self.functions if tool.name == self.name)
        return self.functions


@dataclass(frozen=True)
class OutputFormat:
    """The reply's format: plain `text`, any JSON object, or JSON valid against `schema`."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str = ""
    schema: dict[str, Any] | None = None
    strict: bool = False
    param: str = "response_format"  # the request field it came from, for errors to name


@dataclass(frozen=True)
class Reasoning:
    """How a reasoning model may think before it answers (None: the model's own default).

    From each API: chat completions' `reasoning_effort`, the Responses API's `reasoning`
    (`effort`, `summary`), the Messages API's `thinking` (`budget_tokens`) and
    `output_config.effort`. `adaptive`: the model decides whether to think at all (Claude
    Code's `thinking: {"type": "adaptive"}`), so a model that cannot reason honours it by not
    reasoning; any other request for reasoning is refused by name where the model has none.
    `shown`: return the reasoning's text (Anthropic's `display: omitted` keeps only its seal);
    `sealed`: return OpenAI's `encrypted_content` (`include: reasoning.encrypted_content`).
    """

    effort: Literal["minimal", "low", "medium", "high"] | None = None
    budget_tokens: int | None = None
    summary: str | None = None
    adaptive: bool = False
    shown: bool = True
    sealed: bool = False
    param: str = "reasoning"  # the request field it came from, for errors to name


@dataclass(frozen=True)
class SamplingOptions:
    """What shapes the reply beyond temperature and length; None or empty: the provider's own.

    Each provider honours some (`ChatProvider.honours`); a request setting one its provider
    does not honour is refused by name, never run without it.
    """

    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    output_format: OutputFormat = field(default_factory=OutputFormat)
    tools: Tools = field(default_factory=Tools)
    logprobs: int | None = None
    """Report each token's log probability and this many alternatives (None: do not)."""
    reasoning: Reasoning | None = None
    cache_points: frozenset[Literal["system", "tools"]] = frozenset()
    """Where the caller asked for a prompt-cache breakpoint besides its messages'."""

    def param_of(self, name: str) -> str:
        """The request field an option `name` came from, for an error to name it."""
        if name == "reasoning" and self.reasoning is not None:
            return self.reasoning.param
        return name

    def chosen(self) -> list[str]:
        """The names of the options this request sets."""
        names = [
            name
            for name in ("top_p", "seed", "presence_penalty", "frequency_penalty")
            if getattr(self, name) is not None
        ]
        names += ["stop"] if self.stop else []
        names += ["response_format"] if self.output_format.type != "text" else []
        names += ["logprobs"] if self.logprobs is not None else []
        if self.reasoning is not None and not self.reasoning.adaptive:
            names.append("reasoning")
        return names + (["tools"] if self.tools.offered else [])


@dataclass(frozen=True)
class GenerationRequest:
    """What a provider needs to produce one reply.

    `instructions` is the composed system prompt; `messages` ends with the user's new message.
    `api_key` is the key chosen by the chat service (None for providers that need none), and
    `key_source` says where it came from (`user`, `server` or `none`), for logs and metrics.
    `deadline` (a `time.monotonic()` value) is when the answer must be out, for example the
    Lambda's own timeout less a margin; None when only the provider's own timeout bounds it.
    `cache_scope` is whose request it is, for a provider that keeps state between calls (the
    local model's prompt cache): state left by one scope is never reused for another, so no
    tenant's latency tells what another's prompt was; None (a caller with no scope): by nobody.
    """

    instructions: str
    messages: tuple[ChatMessage, ...]
    model: str
    temperature: float
    max_tokens: int
    api_key: SecretStr | None = None
    key_source: str = "none"
    deadline: float | None = None
    options: SamplingOptions = field(default_factory=SamplingOptions)
    cache_scope: str | None = None


@dataclass(frozen=True)
class GuardrailReport:
    """What the guardrail did on a turn, to log, count and charge; never the text it read.

    `findings` name the policies that intervened (`input:words`, `output:pii:EMAIL`...);
    `blocked` says where it blocked the turn (`input` or `output`, "" when it did not);
    `units` are the text units it billed, by policy (Bedrock's `GuardrailUsage` names).
    """

    findings: tuple[str, ...] = ()
    blocked: Literal["", "input", "output"] = ""
    units: tuple[tuple[str, int], ...] = ()

    def plus(self, other: GuardrailReport | None) -> GuardrailReport:
        """Both checks of one turn as one report (its input's and its output's)."""
        if other is None:
            return self
        units = dict(self.units)
        for policy, count in other.units:
            units[policy] = units.get(policy, 0) + count
        return GuardrailReport(
            self.findings + other.findings, self.blocked or other.blocked, tuple(units.items())
        )


@dataclass(frozen=True)
class Generation:
    """A provider's reply with the usage it reports.

    `model` names the model that really ran; `temperature` is the one the provider reports using
    (None if it does not say); `attempts` counts the tries it took; `finish_reason` is `stop`,
    `length` when `max_tokens` cut the reply short, or `tool_calls` when the reply is
    `tool_calls` (its `text` then whatever the model said beside them, often nothing), or
    `content_filter` when the provider's filter or guardrail stopped it.
    `logprobs` has one entry per reply token when the request asked for them.
    `cached_input_tokens` of the `input_tokens` were read from the provider's prompt cache, and
    `cache_write_tokens` of them written to it (both 0 where the provider reports neither).
    `thoughts` are what it reasoned (when asked and its provider returns them).
    `guardrail` is what the guardrail (BEDROCK_GUARDRAIL) did on the turn, if one ran.
    """

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    output_format: str = "text"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    temperature: float | None = None
    attempts: int = 1
    finish_reason: FinishReason = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    thoughts: tuple[Thought, ...] = ()
    reasoning_tokens: int = 0
    """Of the `output_tokens`, those the model spent reasoning (priced as output)."""
    stop_sequence: str | None = None
    """With `finish_reason` stop: the stop sequence that ended the reply ("" when a sequence
    did and the provider does not say which; None when none did)."""
    guardrail: GuardrailReport | None = None

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class EmbeddingRequest:
    """Texts to embed with one model, in order; or, for a provider that reads them, token arrays.

    `texts` or `tokens` holds the inputs (the other is empty). `dimensions` asks for shorter
    vectors where the model can make them; `input_type` (Cohere's: `search_document`,
    `search_query`...) and `normalize` (Titan's) are those models' own options, None where the
    request leaves them to the provider. `api_key`, `key_source` and `deadline` as in
    `GenerationRequest`.
    """

    model: str
    texts: tuple[str, ...] = ()
    tokens: tuple[tuple[int, ...], ...] = ()
    dimensions: int | None = None
    input_type: str | None = None
    normalize: bool | None = None
    user: str = ""
    api_key: SecretStr | None = None
    key_source: str = "none"
    deadline: float | None = None

    @property
    def count(self) -> int:
        """How many inputs there are."""
        return len(self.texts) or len(self.tokens)

    def chosen(self) -> list[str]:
        """The names of the options this request sets (a provider honours some)."""
        names = [
            name
            for name in ("dimensions", "input_type", "normalize")
            if getattr(self, name) is not None
        ]
        return names + (["input"] if self.tokens else [])


@dataclass(frozen=True)
class Embeddings:
    """A provider's vectors, one per input in order, with the tokens it counted.

    Each vector is float32 values as bytes (little-endian, as OpenAI's base64 sends them):
    a quarter of the memory of Python floats, and base64 for a caller that asks for it.
    """

    vectors: tuple[bytes, ...]
    model: str
    input_tokens: int
    attempts: int = 1
