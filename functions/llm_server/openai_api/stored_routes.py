"""Stored responses: `GET`/`DELETE /v1/responses/{id}`, input items, a background one's cancel.

A background response (`background.py`) is read as it is now, and streamed again on request.

Only the caller who created a response reaches it; to anyone else its id is unknown (404).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from llm_server.core.text import bounded
from llm_server.core.turn import RequestContext
from llm_server.exceptions import BadRequestException, NotFoundException
from llm_server.openai_api.background import BackgroundResponses
from llm_server.openai_api.protocol import OpenAIError
from llm_server.openai_api.response_objects import ResponseObject
from llm_server.openai_api.stored import ResponseArchive
from llm_server.web.dependencies import get_request_context
from llm_server.web.sse import sse_response


async def get_archive(request: Request) -> ResponseArchive:
    """The Responses API's stored responses, taken from the app."""
    archive: ResponseArchive = request.app.state.services.responses
    return archive


async def get_background(request: Request) -> BackgroundResponses:
    """The Responses API's background responses, taken from the app."""
    background: BackgroundResponses = request.app.state.services.background
    return background


router = APIRouter(prefix="/v1", tags=["openai-compatible"])

Archive = Annotated[ResponseArchive, Depends(get_archive)]
Context = Annotated[RequestContext, Depends(get_request_context)]
_MISSING: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIError} for status in (400, 401, 403, 404)
}


@router.get(
    "/responses/{response_id}",
    response_model=ResponseObject,
    responses={**_MISSING, 200: {"content": {"text/event-stream": {}}}},
)
async def retrieve_response(
    response_id: str,
    context: Context,
    background: Annotated[BackgroundResponses, Depends(get_background)],
    stream: bool = False,
    starting_after: Annotated[int, Query(ge=-1, le=2**31)] = -1,
) -> Response:
    """A stored response as it was returned, or a background one as it is now.

    `stream=true`: a background response created with `stream: true`, its events after
    `starting_after` (a `sequence_number`), as they come until it ends.
    """
    owner = context.caller.owner
    if stream:
        return sse_response(await background.events(owner, response_id, starting_after))
    return JSONResponse(await background.retrieve(owner, response_id))


@router.post("/responses/{response_id}/cancel", response_model=ResponseObject, responses=_MISSING)
async def cancel_response(
    response_id: str,
    context: Context,
    background: Annotated[BackgroundResponses, Depends(get_background)],
) -> dict[str, Any]:
    """Stop a background response (what it generated is charged); a finished one as it is."""
    return await background.cancel(context.caller.owner, response_id)


@router.delete("/responses/{response_id}", responses=_MISSING)
async def delete_response(response_id: str, archive: Archive, context: Context) -> dict[str, Any]:
    """Erase a stored response (conversations continuing it then start after it)."""
    await archive.delete(context.caller.owner, response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


@router.post("/responses/{path:path}", include_in_schema=False)
async def no_such_endpoint(path: str) -> None:
    """A POST under /v1/responses/ this server has no endpoint for: 404, as for any path.

    Without it, `GET /v1/responses/{id}` made `POST /v1/responses/compact` a 405.
    """
    raise NotFoundException(
        f"POST /v1/responses/{bounded(path)} is not an endpoint of this server", code="not_found"
    )


@router.get("/responses/{response_id}/input_items", responses=_MISSING)
async def list_input_items(
    response_id: str,
    archive: Archive,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> dict[str, Any]:
    """The items a stored response was given, a page at a time (newest first by default)."""
    items = (await archive.get(context.caller.owner, response_id)).input_items
    if order == "desc":
        items = items[::-1]
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise BadRequestException(f"after: no item {after[:64]!r} here", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
