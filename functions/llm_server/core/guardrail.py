"""Every turn through the guardrail (BEDROCK_GUARDRAIL), whatever its provider.

A provider that applies the guardrail itself honours `guardrail` (Bedrock: Converse's
`guardrailConfig`, which reads the system prompt, every message's text and the reply's text).
For everything else the turn core checks with ApplyGuardrail (`guardrails/bedrock.py`):

- Input, before the provider is called: what the model will read and its provider's guardrail
  does not. On other providers the system prompt, every message's text, tool calls' arguments
  and tool results, and text documents; on Bedrock the tool results, the tool calls' arguments
  and the text documents (Converse's guardrail reads none of them). On every provider the
  documents' names and the request's definitions (its tools' names, descriptions and schemas,
  and a JSON answer's schema): the model reads them, and no guardrail of Converse's does. A
  block answers the turn with the guardrail's message and the model is never called; a mask
  goes on, masked; a mask in a definition (code, not prose: rewritten it would change what the
  caller declared) is refused by name. A text document goes on as the text the guardrail read
  (UTF-8), so no model reads bytes the guardrail read otherwise.
- A document that is not text (a PDF) is read by no guardrail API: while a guardrail is set it
  is refused by name, on every provider, rather than passed on unchecked.
- Output, before it leaves: the reply's text, its reasoning and its tool calls' arguments (on
  Bedrock the calls' arguments: Converse checks the rest). A block replaces the reply with the
  guardrail's message (`finish_reason` `content_filter`); a mask goes out masked.
- Streams: see `guarded_stream.py`.

Images are not checked (the guardrail's word, topic and PII policies read text). The report of
what intervened is logged (`guardrail_findings`: policies, never text), counted
(`GuardrailInterventions`) and its units charged (`usage/`), by the runner.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Literal

from llm_server.config.settings import Settings
from llm_server.exceptions import BadRequestException
from llm_server.providers.base import ChatProvider
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_guardrail
from llm_server.utils.request_context import annotate
from llm_server.values import (
    ChatMessage,
    Generation,
    GenerationRequest,
    GuardrailReport,
    ThoughtDelta,
)

if TYPE_CHECKING:  # made only when a guardrail is set (cold start)
    from llm_server.guardrails.bedrock import BedrockGuardrail

GUARDED = "guardrail"
"""What a provider honours when it applies the guardrail itself."""


@dataclass(frozen=True)
class Piece:
    """A text the guardrail reads, and where it goes back.

    The instructions (`message` -1), a message's content, or one of its tool calls' arguments,
    documents, documents' names or (a reply's) thoughts (`index`); or the request's
    definitions (`message` -1), which go back only unchanged.
    """

    message: int
    kind: Literal["content", "arguments", "document", "name", "thought", "definitions"] = "content"
    index: int = 0


@dataclass(frozen=True)
class CheckedInput:
    """A request as the guardrail let it go on, its report, and the answer if it blocked it."""

    request: GenerationRequest
    report: GuardrailReport
    blocked: Generation | None = None


class Guard:
    """Runs a provider's turns through the guardrail (`guardrail` None: straight through)."""

    def __init__(self, guardrail: BedrockGuardrail | None, chunk_chars: int = 1000) -> None:
        self.guardrail = guardrail
        self.chunk_chars = chunk_chars

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        """BEDROCK_GUARDRAIL's guardrail in BEDROCK_REGION, if it is set."""
        ref = settings.guardrail()
        if ref is None:
            return cls(None)
        from llm_server.guardrails.bedrock import BedrockGuardrail

        guardrail = BedrockGuardrail(
            *ref,
            region=settings.bedrock_region,
            timeout=settings.bedrock_timeout_seconds,
            max_connections=settings.max_concurrent_requests,
        )
        return cls(guardrail, settings.guardrail_stream_chars)

    @property
    def tag(self) -> str:
        """The guardrail's `id:version` ("" when none): what a cached answer was checked by."""
        return self.guardrail.tag if self.guardrail is not None else ""

    def prime(self) -> None:
        """Make the guardrail's client ahead of traffic."""
        if self.guardrail is not None:
            self.guardrail.prime()

    def renew(self) -> None:
        """Forget the guardrail's client (after a SnapStart restore)."""
        if self.guardrail is not None:
            self.guardrail.renew()

    def aclose(self) -> None:
        """Let the guardrail's threads go (at server shutdown)."""
        if self.guardrail is not None:
            self.guardrail.shutdown()

    async def generate(self, provider: ChatProvider, request: GenerationRequest) -> Generation:
        """The provider's reply, its input and output checked first."""
        if self.guardrail is None:
            return await provider.generate(request)
        native = GUARDED in provider.honours
        checked = await self.check_input(request, native)
        if checked.blocked is not None:
            return checked.blocked
        generation = await provider.generate(checked.request)
        read = Reading()
        if native:  # Converse read the text and reasoning: its calls' arguments are left
            read = Reading(text=False, thoughts_from=len(generation.thoughts))
        return (await self.check_output(request, generation, checked.report, read))[0]

    def stream(
        self, provider: ChatProvider, request: GenerationRequest
    ) -> AsyncGenerator[str | ThoughtDelta | Generation, None]:
        """The provider's stream, its input checked first and its output as it comes."""
        if self.guardrail is None:
            return provider.stream(request)
        from llm_server.core.guarded_stream import guarded

        return guarded(self, provider, request)

    async def check_input(self, request: GenerationRequest, native: bool) -> CheckedInput:
        """The request as it may go on (masked), or the answer that blocks it."""
        assert self.guardrail is not None
        refuse_unreadable(request.messages)
        pieces = list(_input_pieces(request, native))
        verdict = await self.guardrail.check("input", [t for _, t in pieces], request.deadline)
        checked = _with_texts(request, [p for p, _ in pieces], verdict.texts)
        if verdict.blocked is None:
            return CheckedInput(checked, verdict.report)
        blocked = Generation(
            verdict.blocked,
            request.model,
            input_tokens=0,
            output_tokens=0,
            finish_reason="content_filter",
            guardrail=verdict.report,
        )
        return CheckedInput(checked, verdict.report, blocked)

    async def check_output(
        self,
        request: GenerationRequest,
        generation: Generation,
        report: GuardrailReport,
        read: Reading,
    ) -> tuple[Generation, str | None]:
        """The reply as it may leave (masked, or replaced), and the message if it blocked here.

        `read` says what of the reply is still to check.
        """
        assert self.guardrail is not None
        report = report.plus(generation.guardrail)
        pieces = list(_output_pieces(generation, read))
        verdict = await self.guardrail.check("output", [t for _, t in pieces], request.deadline)
        report = report.plus(verdict.report)
        if verdict.blocked is not None:
            return blocked_reply(generation, verdict.blocked, report), verdict.blocked
        masked = _reply_with_texts(generation, [p for p, _ in pieces], verdict.texts)
        return replace(masked, guardrail=report), None


@dataclass(frozen=True)
class Reading:
    """What of a reply the guardrail has still to read.

    Its text (unless it left checked, or Converse checked it), its thoughts from
    `thoughts_from` on, and its calls' arguments always.
    """

    text: bool = True
    thoughts_from: int = 0


def refuse_unreadable(messages: tuple[ChatMessage, ...]) -> None:
    """Refuse, by its part, a document no guardrail can read (any but text)."""
    binary = next((d for m in messages for d in m.documents if d.text is None), None)
    if binary is not None:
        raise BadRequestException(
            f"{binary.param}: this server checks every request with a guardrail, which reads "
            "text only, so a document that is not text (a PDF) cannot be checked: send its "
            "text instead",
            param=binary.param,
            code="unsupported_content",
        )


def _masked_definition(request: GenerationRequest) -> BadRequestException:
    """The refusal of a request whose tools or answer schema the guardrail would mask."""
    param = "tools" if request.options.tools.functions else request.options.output_format.param
    return BadRequestException(
        f"{param}: this server's guardrail would mask part of what the request declares (its "
        "tools' names, descriptions or schemas, or the answer's schema); a definition is not "
        "rewritten: send it without what the guardrail masks",
        param=param,
        code="guardrail_masked_definition",
    )


def blocked_reply(generation: Generation, message: str, report: GuardrailReport) -> Generation:
    """The reply replaced by the guardrail's message: no calls, reasoning or log probabilities."""
    return replace(
        generation,
        text=message,
        tool_calls=(),
        thoughts=(),
        logprobs=(),
        output_format="text",
        finish_reason="content_filter",
        stop_sequence=None,
        guardrail=report,
    )


def note(generation: Generation, guardrail: str) -> None:
    """Log and count what the guardrail did on a finished turn (its policies, never text)."""
    report = generation.guardrail
    if report is None or not (report.findings or report.blocked):
        return
    fields = {"guardrail_findings": list(report.findings), "guardrail_blocked": report.blocked}
    annotate(**fields)
    logger.info("the guardrail intervened", extra={"guardrail": guardrail, **fields})
    record_guardrail(report)


def _input_pieces(request: GenerationRequest, native: bool) -> Iterator[tuple[Piece, str]]:
    """The request's texts the guardrail must read (`native`: those its provider's does not)."""
    if not native:
        yield Piece(-1), request.instructions
    yield Piece(-1, "definitions"), definitions(request)
    for at, message in enumerate(request.messages):
        if message.role == "tool" or not native:
            yield Piece(at), message.content
        for index, call in enumerate(message.tool_calls):
            yield Piece(at, "arguments", index), call.arguments
        for index, document in enumerate(message.documents):
            yield Piece(at, "name", index), document.name
            if document.text is not None:
                yield Piece(at, "document", index), document.text


def definitions(request: GenerationRequest) -> str:
    """What the request declares for the model to read: its tools, a JSON answer's schema.

    As JSON ("" when it declares neither); every tool, offered or not (a provider may send
    them all).
    """
    options = request.options
    declared: dict[str, object] = {}
    if options.tools.functions:
        declared["tools"] = [asdict(tool) for tool in options.tools.functions]
    output = options.output_format
    if output.type == "json_schema":
        declared["response_format"] = {"name": output.name, "schema": output.schema}
    return json.dumps(declared, ensure_ascii=False) if declared else ""


def _with_texts(
    request: GenerationRequest, pieces: list[Piece], texts: tuple[str, ...]
) -> GenerationRequest:
    """The request with each piece's text as the guardrail let it go on (masked)."""
    instructions, messages = request.instructions, list(request.messages)
    for piece, text in zip(pieces, texts, strict=True):
        if piece.kind == "definitions":
            if text != definitions(request):
                raise _masked_definition(request)
            continue
        if piece.message < 0:
            instructions = text
            continue
        message = messages[piece.message]
        if piece.kind == "content":
            message = replace(message, content=text)
        elif piece.kind == "arguments":
            calls = list(message.tool_calls)
            calls[piece.index] = replace(calls[piece.index], arguments=text)
            message = replace(message, tool_calls=tuple(calls))
        else:  # a document's name, or its text (the text read, in UTF-8, whatever was sent)
            documents = list(message.documents)
            document = documents[piece.index]
            if piece.kind == "name":
                documents[piece.index] = replace(document, name=text)
            elif document.data != (data := text.encode()):
                documents[piece.index] = replace(document, data=data)
            message = replace(message, documents=tuple(documents))
        messages[piece.message] = message
    if instructions == request.instructions and messages == list(request.messages):
        return request
    return replace(request, instructions=instructions, messages=tuple(messages))


def _output_pieces(generation: Generation, read: Reading) -> Iterator[tuple[Piece, str]]:
    """The reply's texts the guardrail must still read."""
    if read.text:
        yield Piece(0), generation.text
    for index, thought in enumerate(generation.thoughts):
        if index >= read.thoughts_from:
            yield Piece(0, "thought", index), thought.text
    for index, call in enumerate(generation.tool_calls):
        yield Piece(0, "arguments", index), call.arguments


def _reply_with_texts(
    generation: Generation, pieces: list[Piece], texts: tuple[str, ...]
) -> Generation:
    """The reply with each piece's text as the guardrail let it out (masked)."""
    text, calls, thoughts = generation.text, list(generation.tool_calls), list(generation.thoughts)
    for piece, new in zip(pieces, texts, strict=True):
        if piece.kind == "content":
            text = new
        elif piece.kind == "arguments":
            calls[piece.index] = replace(calls[piece.index], arguments=new)
        else:
            thoughts[piece.index] = replace(thoughts[piece.index], text=new)
    changed = text != generation.text or calls != list(generation.tool_calls)
    changed = changed or thoughts != list(generation.thoughts)
    if not changed:
        return generation
    return replace(
        generation, text=text, tool_calls=tuple(calls), thoughts=tuple(thoughts), logprobs=()
    )
