"""The Responses API's stored responses: `GET`/`DELETE /v1/responses/{id}` and its input items.

Only the caller who created a response reaches it; to anyone else its id is unknown (404).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from llm_server.core.text import bounded
from llm_server.core.turn import RequestContext
from llm_server.exceptions import BadRequestException, NotFoundException
from llm_server.openai_api.protocol import OpenAIError
from llm_server.openai_api.response_objects import ResponseObject
from llm_server.openai_api.stored import ResponseArchive
from llm_server.web.dependencies import get_request_context


async def get_archive(request: Request) -> ResponseArchive:
    """The Responses API's stored responses, taken from the app."""
    archive: ResponseArchive = request.app.state.services.responses
    return archive


router = APIRouter(prefix="/v1", tags=["openai-compatible"])

Archive = Annotated[ResponseArchive, Depends(get_archive)]
Context = Annotated[RequestContext, Depends(get_request_context)]
_MISSING: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIError} for status in (400, 401, 403, 404)
}


@router.get("/responses/{response_id}", response_model=ResponseObject, responses=_MISSING)
async def retrieve_response(response_id: str, archive: Archive, context: Context) -> dict[str, Any]:
    """A stored response, as it was returned."""
    return (await archive.get(context.caller.owner, response_id)).response


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
