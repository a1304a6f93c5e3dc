"""OpenAI-compatible endpoints, so OpenAI's SDKs and tools work by base URL alone.

`POST /v1/chat/completions`, `POST /v1/responses` (both streamed or not) and `GET /v1/models`,
on every provider. The caller's OpenAI key comes as `Authorization: Bearer sk-...`; a bearer
token that is not an OpenAI key (SDKs insist on sending one; "EMPTY" or "local" is customary for
local models) counts as no key. `OPENAI_COMPAT_FREE_MODE` decides whether a request without a key
may use the server's key. Errors use OpenAI's shape (see `api/errors.py`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from llm_server.api.dependencies import get_app_settings, get_caller, get_chat_service
from llm_server.api.errors import openai_error_body
from llm_server.api.streaming import primed, sse, sse_response
from llm_server.config.settings import Settings
from llm_server.exceptions import LLMServerException, ValidationException
from llm_server.schemas import openai_compat as oa
from llm_server.services.caller import Caller
from llm_server.services.chat_service import ChatService, Outcome, Turn

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

Service = Annotated[ChatService, Depends(get_chat_service)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]


def caller_key(request: Request) -> str:
    """The OpenAI key in `Authorization: Bearer`, or "" when there is none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token.startswith("sk-") else ""


def _split(
    settings: Settings, items: list[oa.InputMessage], param: str, instructions: str | None = None
) -> tuple[str, tuple[Any, ...]]:
    """The instructions and conversation of `items`, at most MAX_HISTORY_ITEMS of them."""
    if len(items) > settings.max_history_items:
        raise ValidationException(
            f"{param} has {len(items)} items; at most {settings.max_history_items} are allowed",
            param=param,
        )
    return oa.split_messages(items, param, instructions)


def _turn(
    request: Request, settings: Settings, instructions: str, messages: Any, **kw: Any
) -> Turn:
    return Turn(
        instructions=instructions,
        messages=messages,
        caller_key=caller_key(request),
        free_mode=settings.openai_compat_free_mode,
        key_param="Authorization",
        **kw,
    )


@router.get("/models")
async def list_models(service: Service, settings: AppSettings) -> dict[str, Any]:
    """The models this deployment can serve: the local model and/or the configured OpenAI ones."""
    names: list[tuple[str, str]] = []
    local = service.local_model_name
    if settings.llm_provider != "openai" and service.local.status().get("model_path"):
        names.append((local or "local", "llm-server"))
    if settings.llm_provider != "local":
        for name in dict.fromkeys([settings.default_model, *settings.openai_model_list()]):
            names.append((name, "openai"))
    created = int(time.time())
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": owner}
            for name, owner in names
        ],
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: oa.ChatCompletionRequest,
    request: Request,
    service: Service,
    settings: AppSettings,
    caller: CallerDep,
) -> Response:
    """Chat Completions, whole or as `chat.completion.chunk` events."""
    instructions, messages = _split(settings, body.messages, "messages")
    turn = _turn(
        request,
        settings,
        instructions,
        messages,
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
    )
    completion_id = oa.new_id("chatcmpl-")
    if not body.stream:
        outcome = await service.run(turn, caller)
        return JSONResponse(oa.chat_completion(completion_id, outcome.generation))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    stream = await primed(service.run_stream(turn, caller))
    return sse_response(_completion_chunks(stream, completion_id, body.model, include_usage))


async def _completion_chunks(
    stream: AsyncIterator[str | Outcome], completion_id: str, model: str, include_usage: bool
) -> AsyncIterator[str]:
    yield sse(oa.chat_chunk(completion_id, model, {"role": "assistant", "content": ""}))
    try:
        async for item in stream:
            if isinstance(item, str):
                yield sse(oa.chat_chunk(completion_id, model, {"content": item}))
                continue
            generation = item.generation
            yield sse(oa.chat_chunk(completion_id, generation.model, {}, generation.finish_reason))
            if include_usage:
                usage = oa.usage_of(generation)
                yield sse(oa.chat_chunk(completion_id, generation.model, None, usage=usage))
    except LLMServerException as exc:
        yield sse(openai_error_body(exc))
        return
    yield sse("[DONE]")


@router.post("/responses", response_model=None)
async def create_response(
    body: oa.ResponsesRequest,
    request: Request,
    service: Service,
    settings: AppSettings,
    caller: CallerDep,
) -> Response:
    """The Responses API, whole or as its streaming events."""
    items = (
        [oa.InputMessage(role="user", content=body.input)]
        if isinstance(body.input, str)
        else body.input
    )
    instructions, messages = _split(settings, items, "input", body.instructions)
    turn = _turn(
        request,
        settings,
        instructions,
        messages,
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_output_tokens,
    )
    response_id = oa.new_id("resp_")
    if not body.stream:
        outcome = await service.run(turn, caller)
        return JSONResponse(oa.response_object(response_id, body.model, body, outcome.generation))
    stream = await primed(service.run_stream(turn, caller))
    return sse_response(_response_events(stream, response_id, body))


async def _response_events(
    stream: AsyncIterator[str | Outcome], response_id: str, body: oa.ResponsesRequest
) -> AsyncIterator[str]:
    sequence = 0
    item_id = oa.output_message(response_id, "")["id"]
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}

    def event(kind: str, **fields: Any) -> str:
        nonlocal sequence
        sequence += 1
        return sse({"type": kind, "sequence_number": sequence, **fields}, event=kind)

    started = oa.response_object(response_id, body.model, body)
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    item = oa.output_message(response_id, "", status="in_progress")
    yield event("response.output_item.added", output_index=0, item=item)
    yield event("response.content_part.added", **where, part=oa.output_text(""))
    try:
        async for piece in stream:
            if isinstance(piece, str):
                yield event("response.output_text.delta", **where, delta=piece, logprobs=[])
                continue
            text = piece.generation.text
            yield event("response.output_text.done", **where, text=text, logprobs=[])
            yield event("response.content_part.done", **where, part=oa.output_text(text))
            done_item = oa.output_message(response_id, text)
            yield event("response.output_item.done", output_index=0, item=done_item)
            final = oa.response_object(response_id, body.model, body, piece.generation)
            kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
            yield event(kind, response=final)
    except LLMServerException as exc:
        yield event("error", code=exc.code, message=exc.message, param=exc.param)
