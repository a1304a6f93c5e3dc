"""From OpenAI's requests to a turn's messages, and from an `Outcome` to OpenAI's objects."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel

from llm_server.core.formats import parse_output_format
from llm_server.exceptions import BadRequestException
from llm_server.openai_api import reasoning, tools
from llm_server.openai_api.files import FILE_PART_TYPES, document_of
from llm_server.openai_api.protocol import (
    IMAGE_PART_TYPES,
    TEXT_PART_TYPES,
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceLogprobs,
    ChunkChoice,
    ChunkDelta,
    CompletionTokensDetails,
    CompletionUsage,
    ContentPart,
    InputItem,
    InputMessage,
    OpenAIError,
    OpenAIErrorDetail,
    PromptTokensDetails,
    ResponsesRequest,
    TokenLogprob,
    TopLogprob,
)
from llm_server.openai_api.response_objects import (
    FunctionCallItem,
    IncompleteDetails,
    InputTokensDetails,
    OutputMessage,
    OutputText,
    OutputTokensDetails,
    ReasoningItem,
    ResponseObject,
    ResponseUsage,
)
from llm_server.values import (
    ChatMessage,
    Document,
    Generation,
    OutputFormat,
    Role,
    SamplingOptions,
    Thought,
)
from llm_server.values import TokenLogprob as BaseTokenLogprob


def split_messages(
    messages: Sequence[InputMessage | InputItem], param: str, instructions: str | None = None
) -> tuple[str, tuple[ChatMessage, ...]]:
    """System and developer messages become the instructions; the rest, the conversation.

    A `reasoning` item's thought goes with the assistant message or call that follows it.
    """
    system = [instructions] if instructions else []
    turns: list[ChatMessage] = []
    thoughts: list[Thought] = []
    for index, message in enumerate(messages):
        where = f"{param}.{index}"
        if isinstance(message, InputItem) and message.type == "reasoning":
            thoughts.append(reasoning.thought_from_item(message))
            continue
        turn = _turn(message, where, system)
        if turn is None:
            continue
        if thoughts and turn.role == "assistant":
            turn = replace(turn, thoughts=(*thoughts, *turn.thoughts))
            thoughts = []
        turns.append(turn)
    if not turns:
        raise BadRequestException(
            f"{param} needs at least one user or assistant message", param=param
        )
    return "\n\n".join(part for part in system if part), tuple(turns)


def _turn(message: InputMessage | InputItem, where: str, system: list[str]) -> ChatMessage | None:
    """One message or item as the core's (None: a system message, added to `system`)."""
    if isinstance(message, InputItem) and message.type != "message":
        return tools.function_item(message, where)
    if message.role is None:
        raise BadRequestException(f"{where}.role is required for a message", param=f"{where}.role")
    text, images, documents = _content_of(message, f"{where}.content")
    if message.role in ("system", "developer"):
        system.append(text)
        return None
    if isinstance(message, InputMessage) and message.role == "tool":
        call_id = tools.required(message.tool_call_id, f"{where}.tool_call_id")
        return ChatMessage("tool", text, tool_call_id=call_id)
    role: Role = "user" if message.role == "user" else "assistant"
    if not isinstance(message, InputMessage):
        return ChatMessage(role, text, images, documents=documents)
    calls = tuple(map(tools.tool_call, message.tool_calls or ()))
    thoughts = reasoning.thoughts_from_blocks(message.thinking_blocks)
    return ChatMessage(role, text, images, calls, thoughts=thoughts, documents=documents)


def _content_of(
    message: InputMessage | InputItem, param: str
) -> tuple[str, tuple[str, ...], tuple[Document, ...]]:
    """A message's text, image URLs and files; images and files in user messages only."""
    if message.content is None or isinstance(message.content, str):
        return message.content or "", (), ()
    texts, images, documents = [], [], []
    for index, part in enumerate(message.content):
        where = f"{param}.{index}"
        if part.type in TEXT_PART_TYPES and part.text is not None:
            texts.append(part.text)
        elif part.type in IMAGE_PART_TYPES and message.role == "user":
            images.append(_image_url(part, where))
        elif part.type in FILE_PART_TYPES and message.role == "user":
            fields = part.file if part.type == "file" and part.file is not None else part
            documents.append(document_of(fields.model_dump(), where))
        else:
            raise BadRequestException(
                f"{where}: content of type {part.type[:32]!r} is not supported here", param=where
            )
    return "".join(texts), tuple(images), tuple(documents)


def _image_url(part: ContentPart, param: str) -> str:
    url = part.image_url.get("url") if isinstance(part.image_url, dict) else part.image_url
    if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:image/")):
        raise BadRequestException(
            f"{param}: an image needs an https or data:image URL", param=param
        )
    return url


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: `chatcmpl-...`, `resp_...`."""
    return f"{prefix}{uuid.uuid4().hex}"


def chat_completion(
    completion_id: str, generation: Generation, logprobs: bool = False
) -> ChatCompletion:
    """A `chat.completion` object (with `logprobs` when the request asked for them)."""
    return ChatCompletion(
        id=completion_id,
        created=int(generation.created_at.timestamp()),
        model=generation.model,
        choices=[
            ChatChoice(
                message=AssistantMessage(
                    content=generation.text or (None if generation.tool_calls else ""),
                    tool_calls=[tools.chat_tool_call(call) for call in generation.tool_calls]
                    or None,
                    reasoning_content=reasoning.reasoning_text(generation),
                    thinking_blocks=reasoning.thinking_blocks(generation.thoughts),
                ),
                logprobs=choice_logprobs(generation) if logprobs else None,
                finish_reason=generation.finish_reason,
            )
        ],
        usage=usage_of(generation),
    )


def choice_logprobs(generation: Generation) -> ChoiceLogprobs:
    """A choice's `logprobs`: one entry per reply token."""
    return ChoiceLogprobs(content=token_logprobs(generation.logprobs))


def token_logprobs(entries: tuple[BaseTokenLogprob, ...]) -> list[TokenLogprob]:
    """Log probabilities as both APIs show them."""
    return [
        TokenLogprob(
            token=entry.token,
            logprob=entry.logprob,
            bytes=list(entry.bytes),
            top_logprobs=[
                TopLogprob(token=top.token, logprob=top.logprob, bytes=list(top.bytes))
                for top in entry.top_logprobs
            ],
        )
        for entry in entries
    ]


def chat_chunk(
    completion_id: str,
    model: str,
    created: int,
    delta: ChunkDelta | None,
    generation: Generation | None = None,
) -> ChatCompletionChunk:
    """A `chat.completion.chunk`.

    A delta; the last delta (with `generation`'s finish reason); or, with `delta=None`, the
    usage-only final chunk.
    """
    chunk = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[])
    if delta is not None:
        reason = generation.finish_reason if generation else None
        chunk.choices.append(ChunkChoice(delta=delta, finish_reason=reason))
    elif generation is not None:
        chunk.usage = usage_of(generation)
    return chunk


def usage_of(generation: Generation) -> CompletionUsage:
    """Chat Completions' usage object."""
    return CompletionUsage(
        prompt_tokens=generation.input_tokens,
        completion_tokens=generation.output_tokens,
        total_tokens=generation.total_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=generation.cached_input_tokens),
        completion_tokens_details=CompletionTokensDetails(
            reasoning_tokens=generation.reasoning_tokens
        ),
    )


INCOMPLETE_REASONS: dict[str, Literal["max_output_tokens", "content_filter"]] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}
"""The finish reasons that leave a response `incomplete`, and the reason it names."""


def response_object(
    response_id: str,
    model: str,
    created_at: int,
    request: ResponsesRequest,
    temperature: float,
    generation: Generation | None = None,
) -> ResponseObject:
    """A `response` object: in progress (no generation yet) or completed/incomplete.

    `temperature` is the one used (the request's, or the server's default); `text` echoes the
    request's format.
    """
    response = ResponseObject(
        id=response_id,
        created_at=created_at,
        status="in_progress",
        model=model,
        output=[],
        instructions=request.instructions,
        temperature=temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        max_output_tokens=request.max_output_tokens,
        text={"format": text_format(request)},
        tools=[{**tool.model_dump(), "strict": bool(tool.strict)} for tool in request.tools or ()],
        tool_choice=_dumped(request.tool_choice) or "auto",
        parallel_tool_calls=request.parallel_tool_calls is not False,
        top_logprobs=request.top_logprobs or 0,
        store=request.store,
        background=request.background,
        previous_response_id=request.previous_response_id,
        reasoning=request.reasoning.model_dump() if request.reasoning else None,
    )
    conversation = request.conversation
    if conversation is not None:  # its id, as `responses.conversation_id` checked it
        found = conversation if isinstance(conversation, str) else conversation.get("id")
        response.conversation = {"id": str(found)}
    if generation is not None:
        cut = generation.finish_reason in INCOMPLETE_REASONS
        response.status = "incomplete" if cut else "completed"
        response.completed_at = int(time.time())
        response.model = generation.model
        sealed = "reasoning.encrypted_content" in (request.include or ())
        response.output = output_items(response_id, generation, response.status, sealed)
        reason = INCOMPLETE_REASONS.get(generation.finish_reason)
        response.incomplete_details = IncompleteDetails(reason=reason) if reason else None
        response.usage = ResponseUsage(
            input_tokens=generation.input_tokens,
            input_tokens_details=InputTokensDetails(
                cached_tokens=generation.cached_input_tokens,
                cache_write_tokens=generation.cache_write_tokens,
            ),
            output_tokens=generation.output_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=generation.reasoning_tokens),
            total_tokens=generation.total_tokens,
        )
    return response


def output_items(
    response_id: str,
    generation: Generation,
    status: Literal["completed", "incomplete"],
    sealed: bool = False,
) -> list[ReasoningItem | OutputMessage | FunctionCallItem]:
    """A finished response's output: reasoning, its message (unless only calls), its calls.

    `sealed`: each reasoning item with its encrypted content.
    """
    items: list[ReasoningItem | OutputMessage | FunctionCallItem] = [
        reasoning.reasoning_item(reasoning_id(response_id, index), thought, sealed)
        for index, thought in enumerate(generation.thoughts)
    ]
    if generation.text or not generation.tool_calls:
        items.append(output_message(response_id, generation.text, status, generation.logprobs))
    calls = enumerate(generation.tool_calls)
    return items + [
        tools.function_call_item(call, item_id(response_id, "fc_", i)) for i, call in calls
    ]


def reasoning_id(response_id: str, index: int) -> str:
    """The id of a response's `index`th reasoning item."""
    return item_id(response_id, "rs_", index)


def item_id(response_id: str, prefix: str, index: int) -> str:
    """The id of an item of a response: the response's own id is in it (`items.py` reads it)."""
    return f"{prefix}{response_id.removeprefix('resp_')}_{index}"


def _dumped(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def text_format(request: ResponsesRequest) -> dict[str, Any]:
    """The request's `text.format`, checked: text (the default), json_object or json_schema."""
    text = (request.model_extra or {}).get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is None:
        return {"type": "text"}
    parse_output_format(fmt, "text.format")
    return dict(fmt)


def chat_options(body: ChatCompletionRequest) -> SamplingOptions:
    """The sampling options a chat completion request sets."""
    stop = [body.stop] if isinstance(body.stop, str) else body.stop or []
    fmt = body.response_format
    return SamplingOptions(  # a default value asks for nothing: no provider need honour it
        top_p=None if body.top_p == 1 else body.top_p,
        stop=tuple(stop),
        seed=body.seed,
        presence_penalty=body.presence_penalty or None,
        frequency_penalty=body.frequency_penalty or None,
        output_format=OutputFormat()
        if fmt is None
        else parse_output_format(fmt, "response_format"),
        tools=tools.chat_tools(body),
        logprobs=_logprobs(body.logprobs, body.top_logprobs, "logprobs"),
        reasoning=reasoning.chat_reasoning(body),
    )


def responses_options(body: ResponsesRequest) -> SamplingOptions:
    """The sampling options a Responses request sets."""
    fmt = text_format(body)
    top_p = None if body.top_p == 1 else body.top_p
    return SamplingOptions(
        top_p=top_p,
        output_format=parse_output_format(fmt, "text.format"),
        tools=tools.responses_tools(body),
        logprobs=_logprobs(
            "message.output_text.logprobs" in (body.include or ()), body.top_logprobs, "include"
        ),
        reasoning=reasoning.responses_reasoning(body),
    )


def _logprobs(asked: bool | None, top: int | None, param: str) -> int | None:
    """How many alternatives to report per token, or None when logprobs are not asked for."""
    if top and not asked:
        raise BadRequestException(f"top_logprobs needs {param} to ask for logprobs", param=param)
    return (top or 0) if asked else None


def output_message(
    response_id: str,
    text: str,
    status: Literal["in_progress", "completed", "incomplete"],
    logprobs: tuple[BaseTokenLogprob, ...] = (),
) -> OutputMessage:
    """The assistant message item of a response's `output` (no content while in progress)."""
    part = OutputText(text=text, logprobs=token_logprobs(logprobs))
    return OutputMessage(
        id=f"msg_{response_id.removeprefix('resp_')}",
        status=status,
        content=[] if status == "in_progress" else [part],
    )


def openai_error(message: str, error_type: str, code: str, param: str | None) -> OpenAIError:
    """OpenAI's error body, which the SDK turns into its exception classes."""
    detail = OpenAIErrorDetail(message=message, type=error_type, param=param, code=code)
    return OpenAIError(error=detail)
