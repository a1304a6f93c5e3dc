"""`POST /api/v1/chat`: a thin translation from HTTP to the chat service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from llm_server.api.dependencies import get_caller, get_chat_service, get_idempotency_guard
from llm_server.api.errors import error_body
from llm_server.api.streaming import primed, sse, sse_response
from llm_server.exceptions import LLMServerException, ValidationException
from llm_server.schemas.chat import ChatRequest, ChatResponse, ErrorResponse, SessionResponse
from llm_server.services.caller import Caller
from llm_server.services.chat_service import ChatService
from llm_server.utils.redact import key_fingerprint

Service = Annotated[ChatService, Depends(get_chat_service)]
CallerDep = Annotated[Caller, Depends(get_caller)]
SessionId = Annotated[str, Path(max_length=256)]

router = APIRouter(prefix="/api/v1", tags=["chat"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed JSON, or a request the model provider rejected",
        401: "Missing, malformed or rejected OpenAI key, or a refused client credential",
        413: "Body over MAX_BODY_BYTES",
        409: "A request with the same Idempotency-Key is still in progress",
        422: "A field has a bad value (the message names it)",
        429: "Too many requests in progress, or upstream rate limit (see Retry-After)",
        500: "Server misconfiguration",
        502: "The model provider failed",
        504: "The model provider did not answer in time",
    }.items()
}


@router.post("/chat", response_model=ChatResponse, responses=_ERRORS)
async def chat(
    request: ChatRequest, http: Request, service: Service, caller: CallerDep
) -> ChatResponse | Response:
    """Answer `user_message`, given the system prompt sections and the earlier turns.

    With `"stream": true` the answer is Server-Sent Events: `delta` events carrying
    `{"text": ...}`, then one `done` event carrying the whole chat response (or an `error`
    event carrying the error body, if the stream fails once started).

    With an `Idempotency-Key` header (not streamed), a retry returns the first result without
    calling the model again, marked `Idempotent-Replayed: true`. Keys are the caller's own.
    """
    if request.stream:
        return sse_response(_chat_events(await primed(service.chat_stream(request, caller))))
    key = http.headers.get("idempotency-key")
    if key is None:
        return await service.chat(request, caller)
    payer = key_fingerprint(request.openai_api_key) if request.openai_api_key else "server"

    async def answer() -> dict[str, Any]:
        return (await service.chat(request, caller)).model_dump(mode="json")

    result, replayed = await get_idempotency_guard(http).run(
        key,
        scope=f"chat:{caller.owner}:{payer}",
        body=request.model_dump(mode="json", exclude={"openai_api_key"}),
        call=answer,
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(result, headers=headers)


async def _chat_events(stream: AsyncIterator[str | ChatResponse]) -> AsyncIterator[str]:
    try:
        async for item in stream:
            if isinstance(item, str):
                yield sse({"text": item}, event="delta")
            else:
                yield sse(item.model_dump(mode="json"), event="done")
    except LLMServerException as exc:
        yield sse(error_body(exc), event="error")


@router.get("/sessions/{session_id}", tags=["sessions"], response_model=SessionResponse)
async def read_session(
    session_id: SessionId,
    service: Service,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Turns per page.")] = 50,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,20}$", description="`next_cursor` of a page.")
    ] = None,
) -> SessionResponse:
    """One page of your session's stored turns, oldest first (404 if it has none).

    `next_cursor` fetches the next page; it is null on the last one. Another caller's session
    of the same id is not yours: it reads as missing.
    """
    page = await service.session_page(caller, session_id, limit, int(cursor) if cursor else None)
    if not page.turns and cursor is None:
        raise ValidationException(
            f"No stored turns for session {session_id!r}", code="session_not_found", status_code=404
        )
    cursor = None if page.next_cursor is None else str(page.next_cursor)
    return SessionResponse(session_id=session_id, turns=page.turns, next_cursor=cursor)


@router.delete("/sessions/{session_id}", status_code=204, tags=["sessions"])
async def erase_session(session_id: SessionId, service: Service, caller: CallerDep) -> Response:
    """Erase your session's stored turns (204 whether or not it had any)."""
    await service.forget_session(caller, session_id)
    return Response(status_code=204)
