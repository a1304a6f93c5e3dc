"""`POST /api/v1/chat`: a thin translation from HTTP to the chat service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from llm_server.api.dependencies import get_chat_service
from llm_server.api.errors import error_response
from llm_server.api.streaming import primed, sse, sse_response
from llm_server.exceptions import LLMServerException
from llm_server.schemas.chat import ChatRequest, ChatResponse, ErrorResponse
from llm_server.services.chat_service import ChatService

router = APIRouter(prefix="/api/v1", tags=["chat"])

_ERRORS = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed JSON, or a request the model provider rejected",
        401: "Missing, malformed or rejected OpenAI key",
        413: "Body over MAX_BODY_BYTES",
        422: "A field has a bad value (the message names it)",
        429: "Too many requests in progress, or upstream rate limit (see Retry-After)",
        500: "Server misconfiguration",
        502: "The model provider failed",
        504: "The model provider did not answer in time",
    }.items()
}


@router.post("/chat", response_model=ChatResponse, responses=_ERRORS)
async def chat(
    request: ChatRequest, service: Annotated[ChatService, Depends(get_chat_service)]
) -> ChatResponse | StreamingResponse:
    """Answer `user_message`, given the system prompt sections and the earlier turns.

    With `"stream": true` the answer is Server-Sent Events: `delta` events carrying
    `{"text": ...}`, then one `done` event carrying the whole chat response (or an `error`
    event carrying the error body, if the stream fails once started).
    """
    if not request.stream:
        return await service.chat(request)
    return sse_response(_chat_events(await primed(service.chat_stream(request))))


async def _chat_events(stream: AsyncIterator[str | ChatResponse]) -> AsyncIterator[str]:
    try:
        async for item in stream:
            if isinstance(item, str):
                yield sse({"text": item}, event="delta")
            else:
                yield sse(item.model_dump(mode="json"), event="done")
    except LLMServerException as exc:
        yield sse(json.loads(error_response(exc).body), event="error")
