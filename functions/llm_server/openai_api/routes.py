"""OpenAI-compatible endpoints, so OpenAI's SDKs and tools work by base URL alone.

`POST /v1/chat/completions`, `POST /v1/responses` (both streamed or not) and `GET /v1/models`,
on every provider. The caller's OpenAI key comes as `Authorization: Bearer sk-...`; a bearer
token that is not an OpenAI key (SDKs insist on sending one; "EMPTY" or "local" is customary for
local models) counts as no key. `OPENAI_COMPAT_FREE_MODE` decides whether a request without a key
may use the server's key. Errors use OpenAI's shape (see `web/errors.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from llm_server.config.settings import Settings
from llm_server.core.caller import Caller
from llm_server.core.runner import TurnRunner
from llm_server.core.turn import Outcome, RequestContext, Turn
from llm_server.exceptions import NotFoundException, ValidationException
from llm_server.openai_api import parameters, responses, streams, translate
from llm_server.openai_api.conversation_routes import Conversations
from llm_server.openai_api.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    InputItem,
    InputMessage,
    ModelCard,
    ModelList,
    OpenAIError,
    ResponsesRequest,
)
from llm_server.openai_api.response_objects import (
    ResponseObject,
)
from llm_server.openai_api.stored_routes import Archive, get_background
from llm_server.values import Generation
from llm_server.web.dependencies import (
    get_app_settings,
    get_caller,
    get_request_context,
    get_runner,
)
from llm_server.web.json_route import post_json
from llm_server.web.sse import primed, sse_response

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

Runner = Annotated[TurnRunner, Depends(get_runner)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
Context = Annotated[RequestContext, Depends(get_request_context)]
CallerDep = Annotated[Caller, Depends(get_caller)]

# Server-Sent Events, each an `event` name and its JSON `data` (`[DONE]` ends a chat stream).
_SSE_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}
_EVENT_STREAM = {"text/event-stream": {"schema": _SSE_EVENT}}
ANSWERS: dict[int | str, dict[str, Any]] = {  # also legacy.py's
    200: {"content": _EVENT_STREAM, "description": "JSON, or with `stream: true` SSE events"},
    **{status: {"model": OpenAIError} for status in (400, 401, 403, 404, 409, 413, 415, 429)},
    **{status: {"model": OpenAIError} for status in (500, 502, 504)},
}


def caller_key(request: Request) -> str:
    """The OpenAI key in `Authorization: Bearer`, or "" when there is none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token.startswith("sk-") else ""


def turn_for(
    key: str,
    runner: TurnRunner,
    settings: Settings,
    items: Sequence[InputMessage | InputItem],
    param: str,
    instructions: str | None = None,
    **fields: Any,
) -> Turn:
    """The turn of a request's messages, at most MAX_HISTORY_ITEMS of them.

    `key` is the caller's own OpenAI key (`caller_key`), "" for none: without it the model must
    be one this server lists (404 `model_not_found` otherwise); with it, OpenAI decides.
    """
    if not key and not settings.openai_compat_free_mode:
        known_model(runner, fields["model"])
    if len(items) > settings.max_history_items:
        raise ValidationException(
            f"{param} has {len(items)} items; at most {settings.max_history_items} are allowed",
            param=param,
        )
    system, messages = translate.split_messages(items, param, instructions)
    return Turn(
        instructions=system,
        messages=messages,
        caller_key=key,
        free_mode=settings.openai_compat_free_mode,
        **fields,
    )


def known_model(runner: TurnRunner, model: str, caller: Caller | None = None) -> ModelCard:
    """The card of a model `/v1/models` lists (to `caller`, if given), else a 404.

    `local` names the local model.
    """
    created = int(time.time())
    for name, owner in runner.models(caller):
        if model == name or (model == "local" and owner == "llm-server"):  # the local alias
            return ModelCard(id=name, created=created, owned_by=owner)
    raise NotFoundException(
        f"The model {model[:128]!r} does not exist here: GET /v1/models lists those that do",
        code="model_not_found",
        param="model",
    )


def json_answer(model: BaseModel, outcome: Outcome) -> JSONResponse:
    """A whole answer as JSON, saying whether the response cache answered (`X-Cache`)."""
    headers = {"X-Cache": outcome.cache} if outcome.cache else {}
    return JSONResponse(model.model_dump(mode="json"), headers=headers)


@router.get("/models", response_model=ModelList)
async def list_models(runner: Runner, caller: CallerDep) -> ModelList:
    """The models this deployment can serve (to a gateway key: those its policy allows)."""
    created = int(time.time())
    models = runner.models(caller)
    return ModelList(data=[ModelCard(id=name, created=created, owned_by=o) for name, o in models])


@router.get("/models/{model_id}", response_model=ModelCard, responses={404: {"model": OpenAIError}})
async def retrieve_model(model_id: str, runner: Runner, caller: CallerDep) -> ModelCard:
    """One model of the list, or 404 `model_not_found`."""
    return known_model(runner, model_id, caller)


@post_json(
    router, "/chat/completions", first=get_caller, response_model=ChatCompletion, responses=ANSWERS
)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """Chat Completions, whole or as `chat.completion.chunk` events."""
    runner, settings = await get_runner(request), await get_app_settings(request)
    context = await get_request_context(request, await get_caller(request))
    parameters.refuse_unhonoured(body.model_extra, parameters.CHAT_COMPLETIONS)
    turn = turn_for(
        caller_key(request),
        runner,
        settings,
        body.messages,
        "messages",
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        options=translate.chat_options(body),
    )
    completion_id = translate.new_id("chatcmpl-")
    if not body.stream:
        outcome = await runner.run(turn, context)
        made = translate.chat_completion(completion_id, outcome.generation, bool(body.logprobs))
        return json_answer(made, outcome)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    stream = await primed(runner.stream(turn, context))
    model = runner.reply_model(turn, context)  # as the whole reply names it
    chunks = streams.completion_chunks(
        stream, completion_id, model, include_usage, bool(body.logprobs)
    )
    return sse_response(chunks)


@router.post("/responses", response_model=ResponseObject, responses=ANSWERS)
async def create_response(
    body: ResponsesRequest,
    request: Request,
    runner: Runner,
    settings: AppSettings,
    context: Context,
    archive: Archive,
    conversations: Conversations,
) -> Response:
    """The Responses API, whole, streamed or in the background; stored unless `store: false`."""
    parameters.refuse_unhonoured(body.model_extra, parameters.RESPONSES)
    if "store" in body.model_fields_set and body.store:
        archive.require("store")
    body = body.model_copy(update={"store": body.store and archive.enabled})
    owner, deadline, key = context.caller.owner, context.deadline, caller_key(request)
    body = await responses.resolved(body, owner, archive, conversations, deadline)
    turn_of = partial(response_turn, runner=runner, settings=settings)
    job = responses.new_job(body, turn_of(body, key), context)
    if job.conversation is not None:  # a missing one is a 404 before anything runs
        await conversations.get(owner, job.conversation, "conversation")
    job = responses.with_history(job, archive, conversations)
    if body.background:
        return await _in_background(request, job, context, key, turn_of)

    async def keep(made: ResponseObject, generation: Generation) -> None:
        await responses.finish(job, made, generation, archive, conversations)

    if not body.stream:
        outcome = await runner.run(job.turn, context)
        created = int(outcome.generation.created_at.timestamp())
        made = translate.response_object(
            job.response_id, body.model, created, body, outcome.temperature, outcome.generation
        )
        await keep(made, outcome.generation)
        return json_answer(made, outcome)
    stream = await primed(runner.stream(job.turn, context))
    temperature = settings.default_temperature if body.temperature is None else body.temperature
    return sse_response(streams.response_events(stream, job.response_id, body, temperature, keep))


async def _in_background(
    request: Request,
    job: responses.Job,
    context: RequestContext,
    key: str,
    turn_of: Callable[[ResponsesRequest, str], Turn],
) -> Response:
    """Queue a background response: `queued` at once, or its events as they come."""
    background = await get_background(request)
    start = request.app.state.services.start_background
    queued = await background.queue(job, context, key, turn_of, start)
    if not job.body.stream:
        return JSONResponse(queued.model_dump(mode="json"))
    return sse_response(await background.events(job.owner, job.response_id, -1))


def response_turn(
    body: ResponsesRequest, key: str, *, runner: TurnRunner, settings: Settings
) -> Turn:
    """The turn of a Responses request (its input's references resolved), on `key`."""
    return turn_for(
        key,
        runner,
        settings,
        responses.input_items(body),
        "input",
        body.instructions,
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_output_tokens,
        options=translate.responses_options(body),
    )


@router.post("/responses/input_tokens", responses=ANSWERS)
async def count_input_tokens(
    body: ResponsesRequest,
    request: Request,
    runner: Runner,
    settings: AppSettings,
    context: Context,
    archive: Archive,
    conversations: Conversations,
) -> dict[str, Any]:
    """The input tokens of the same body as a response's; nothing runs.

    The model's own count (the local tokenizer, Bedrock's CountTokens for Claude), else the
    runner's estimate.
    """
    parameters.refuse_unhonoured(body.model_extra, parameters.RESPONSES)
    owner, deadline = context.caller.owner, context.deadline
    body = await responses.resolved(body, owner, archive, conversations, deadline)
    turn_of = partial(response_turn, runner=runner, settings=settings)
    job = responses.new_job(body, turn_of(body, caller_key(request)), context)
    job = responses.with_history(job, archive, conversations)
    turn = job.turn
    if turn.earlier is not None:
        turn = replace(turn, messages=await turn.earlier() + turn.messages, earlier=None)
    counted = await runner.count_tokens(turn, context)
    return {"object": "response.input_tokens", "input_tokens": counted}
