"""`POST /v1/messages` and `POST /v1/messages/count_tokens`: HTTP to turns and back, nothing more.

The caller's credential is `x-api-key`, the header the rest of the server (and API Gateway)
already reads: `ANTHROPIC_API_KEY=<the tenant's key>` is all a Claude Code user sets. The
`anthropic` SDK sends the same key as `Authorization: Bearer`: read as the client key when no
`x-api-key` came (on this API a bearer is never an OpenAI key). The `anthropic-version` and
`anthropic-beta` headers and `?beta=true` are accepted as they come.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from llm_server.anthropic_api import streams, translate
from llm_server.anthropic_api.protocol import ErrorBody, MessageObject, MessagesRequest, TokenCount
from llm_server.core.caller import Caller
from llm_server.web.dependencies import (
    get_app_settings,
    get_request_context,
    get_runner,
    identified,
)
from llm_server.web.json_route import post_json
from llm_server.web.sse import primed, sse_response

router = APIRouter(prefix="/v1", tags=["anthropic-compatible"])


async def get_caller(request: Request) -> Caller:
    """The caller by `x-api-key`, or by the bearer the `anthropic` SDK sends the same key as."""
    headers = dict(request.headers.raw)
    bearer = headers.get(b"authorization", b"")
    if b"x-api-key" not in headers and bearer[:7].lower() == b"bearer ":
        headers[b"x-api-key"] = bearer[7:].strip()
    return await identified(request, headers)


ANSWERS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 413, 429, 500, 502, 503, 504)
}


@post_json(router, "/messages", first=get_caller, response_model=MessageObject, responses=ANSWERS)
async def create_message(body: MessagesRequest, request: Request) -> Response:
    """A message, whole or as Anthropic's stream of events."""
    runner, settings = await get_runner(request), await get_app_settings(request)
    context = await get_request_context(request, await get_caller(request))
    turn = translate.turn_for(body, settings.max_tokens_limit)
    shown = turn.options.reasoning is None or turn.options.reasoning.shown
    message_id = translate.new_id()
    if not body.stream:
        outcome = await runner.run(turn, context)
        made = translate.message_object(message_id, body.model, outcome, shown)
        return JSONResponse(made.model_dump(mode="json"))
    stream = await primed(runner.stream(turn, context))
    return sse_response(streams.message_events(stream, message_id, body.model, shown))


@post_json(
    router,
    "/messages/count_tokens",
    first=get_caller,
    response_model=TokenCount,
    responses=ANSWERS,
)
async def count_tokens(body: MessagesRequest, request: Request) -> Response:
    """The input tokens of the same request body: the provider's count, else an estimate."""
    runner, settings = await get_runner(request), await get_app_settings(request)
    context = await get_request_context(request, await get_caller(request))
    turn = translate.turn_for(body, settings.max_tokens_limit, counting=True)
    counted = TokenCount(input_tokens=await runner.count_tokens(turn, context))
    return JSONResponse(counted.model_dump())
