"""`POST /api/v1/chat` and the session routes: HTTP to turns and back, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from llm_server.core.caller import Caller
from llm_server.core.turn import Outcome, RequestContext
from llm_server.exceptions import LLMServerException, NotFoundException
from llm_server.native_api.conversation import Conversations, chat_response
from llm_server.native_api.errors import error_body
from llm_server.native_api.schemas import ChatRequest, ChatResponse, ErrorResponse, SessionResponse
from llm_server.utils.redact import key_fingerprint
from llm_server.utils.request_context import annotate
from llm_server.values import ThoughtDelta
from llm_server.web.dependencies import get_caller, get_request_context, get_runner
from llm_server.web.json_route import post_json
from llm_server.web.sse import primed, sse, sse_response

if TYPE_CHECKING:  # imported on first use: Powertools' idempotency package loads boto3
    from llm_server.native_api.idempotency import IdempotencyGuard


async def get_conversations(request: Request) -> Conversations:
    """The native API's conversations (its sessions), taken from the app."""
    conversations: Conversations = request.app.state.services.conversations
    return conversations


def get_idempotency_guard(request: Request) -> IdempotencyGuard:
    """The app's idempotency guard, built on first use (its store may need boto3)."""
    guard: IdempotencyGuard | None = getattr(request.app.state, "idempotency", None)
    if guard is None:
        from llm_server.native_api.idempotency import IdempotencyGuard
        from llm_server.stores.factory import idempotency_layer

        settings = request.app.state.settings
        guard = IdempotencyGuard(idempotency_layer(settings), settings.idempotency_ttl_seconds)
        request.app.state.idempotency = guard
    return guard


Chats = Annotated[Conversations, Depends(get_conversations)]
CallerDep = Annotated[Caller, Depends(get_caller)]
SessionId = Annotated[str, Path(max_length=256)]

router = APIRouter(prefix="/api/v1", tags=["chat"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed JSON, or a request the model provider rejected",
        401: "Missing, malformed or rejected OpenAI key, or a refused client credential",
        404: "The model provider has no such model (`model_not_found`)",
        413: "Body over MAX_BODY_BYTES",
        409: "A request with the same Idempotency-Key is still in progress",
        422: "A field has a bad value (the message names it)",
        429: "Too many requests in progress, or upstream rate limit (see Retry-After)",
        500: "Server misconfiguration",
        502: "The model provider failed",
        504: "The model provider did not answer in time",
    }.items()
}


@post_json(router, "/chat", first=get_caller, response_model=ChatResponse, responses=_ERRORS)
async def chat(request: ChatRequest, http: Request) -> Response:
    """Answer `user_message`, given the system prompt sections and the earlier turns.

    With `"stream": true` the answer is Server-Sent Events: `delta` events carrying
    `{"text": ...}`, then one `done` event carrying the whole chat response (or an `error`
    event carrying the error body, if the stream fails once started).

    With an `Idempotency-Key` header (not streamed), a retry returns the first result without
    calling the model again, marked `Idempotent-Replayed: true`. Keys are the caller's own.
    """
    runner, chats = await get_runner(http), await get_conversations(http)
    context = await get_request_context(http, await get_caller(http))
    http.state.session_id = request.session_id  # for the error body, if it comes to that
    annotate(session_id=request.session_id)
    if request.stream:
        turn = await chats.turn_for(request, context)
        stream = await primed(runner.stream(turn, context))  # failing before any text: a 4xx/5xx
        return sse_response(_chat_events(request, stream, chats, context))
    ran: list[Outcome] = []

    async def answer() -> dict[str, Any]:
        """Compose the turn (reading the session), run it, remember it: once, not on a replay."""
        ran.append(await runner.run(await chats.turn_for(request, context), context))
        saved = await chats.remember(context, request, ran[0])
        return chat_response(request, ran[0], saved).model_dump(mode="json")

    key = http.headers.get("idempotency-key")
    if key is None:
        return _json(await answer(), ran[0])
    payer = key_fingerprint(request.openai_api_key) if request.openai_api_key else "server"
    result, replayed = await get_idempotency_guard(http).run(
        key,
        scope=f"chat:{context.caller.owner}:{payer}",
        body=request.model_dump(mode="json", exclude={"openai_api_key"}),
        call=answer,
        deadline=context.deadline,
    )
    response = _json(result, ran[0] if ran else None)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _json(body: dict[str, Any], outcome: Outcome | None) -> JSONResponse:
    """The JSON answer, saying whether the response cache answered (`X-Cache`)."""
    headers = {"X-Cache": outcome.cache} if outcome is not None and outcome.cache else {}
    return JSONResponse(body, headers=headers)


async def _chat_events(
    request: ChatRequest,
    stream: AsyncIterator[str | ThoughtDelta | Outcome],
    chats: Conversations,
    context: RequestContext,
) -> AsyncIterator[str]:
    """The turn's deltas as `delta` events, then the whole response as `done` (or `error`).

    The native contract has no reasoning: a reasoning delta (none is asked for here) is skipped.
    """
    try:
        async for item in stream:
            if isinstance(item, ThoughtDelta):
                continue
            if isinstance(item, str):
                yield sse({"text": item}, event="delta")
                continue
            saved = await chats.remember(context, request, item)
            yield sse(chat_response(request, item, saved).model_dump(mode="json"), event="done")
    except LLMServerException as exc:
        yield sse(error_body(exc, request.session_id), event="error")


@router.get("/sessions/{session_id}", tags=["sessions"], response_model=SessionResponse)
async def read_session(
    session_id: SessionId,
    chats: Chats,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Turns per page.")] = 50,
    # At most 18 digits: below SQLite's and DynamoDB's 2**63 (a cursor is a turn's number).
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of a page.")
    ] = None,
) -> SessionResponse:
    """One page of your session's stored turns, oldest first (404 if it has none).

    `next_cursor` fetches the next page; it is null on the last one. Another caller's session
    of the same id is not yours: it reads as missing.
    """
    page = await chats.page(caller, session_id, limit, int(cursor) if cursor else None)
    if not page.turns and cursor is None:
        raise NotFoundException(
            f"No stored turns for session {session_id!r}", code="session_not_found"
        )
    next_cursor = None if page.next_cursor is None else str(page.next_cursor)
    return SessionResponse(session_id=session_id, turns=page.turns, next_cursor=next_cursor)


@router.delete("/sessions/{session_id}", status_code=204, tags=["sessions"])
async def erase_session(session_id: SessionId, chats: Chats, caller: CallerDep) -> Response:
    """Erase your session's stored turns (204 whether or not it had any)."""
    await chats.forget(caller, session_id)
    return Response(status_code=204)
