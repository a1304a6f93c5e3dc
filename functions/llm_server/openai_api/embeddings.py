"""`POST /v1/embeddings`, as OpenAI defines it, on every provider that embeds.

The vectors come back as JSON numbers (`encoding_format: float`) or as base64 of their float32
bytes (`base64`, what the `openai` SDK asks for unless told otherwise). The body is written
from the providers' float32 bytes one vector at a time, never as one tree of Python floats:
a request for hundreds of long vectors holds its answer's bytes, not ten times them.
"""

from __future__ import annotations

import base64
import json
from array import array
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llm_server.config.settings import Settings
from llm_server.core.runner import TurnRunner
from llm_server.core.text import Text
from llm_server.core.turn import RequestContext
from llm_server.openai_api import parameters
from llm_server.openai_api.routes import ANSWERS, caller_key, known_model
from llm_server.values import EmbeddingRequest, Embeddings
from llm_server.web.dependencies import get_app_settings, get_request_context, get_runner

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

InputType = Literal["search_document", "search_query", "classification", "clustering"]


class EmbeddingsRequest(BaseModel):
    """`POST /v1/embeddings`; `input_type` (Cohere) and `normalize` (Titan) are extra fields."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: Text = Field(min_length=1, max_length=256)
    input: Text | list[Text] | list[int] | list[list[int]] = Field(
        description="A text, texts, or OpenAI's token arrays (refused by other providers)."
    )
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: int | None = Field(None, ge=1, le=8192)
    user: Text | None = Field(None, max_length=256)
    input_type: InputType | None = Field(
        None, description="Cohere's: `search_document` (the default) or `search_query`..."
    )
    normalize: bool | None = Field(None, description="Titan's: unit-length vectors.")


class EmbeddingObject(BaseModel):
    """One input's vector: numbers, or base64 of its float32 bytes."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    """The input tokens the provider counted (what the caller is charged)."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    """`POST /v1/embeddings`'s answer."""

    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: EmbeddingUsage


@router.post("/embeddings", response_model=EmbeddingList, responses=ANSWERS)
async def create_embeddings(
    body: EmbeddingsRequest,
    request: Request,
    runner: Annotated[TurnRunner, Depends(get_runner)],
    settings: Annotated[Settings, Depends(get_app_settings)],
    context: Annotated[RequestContext, Depends(get_request_context)],
) -> Response:
    """One vector per input, in order, from the model's provider, charged to the caller."""
    parameters.refuse_unhonoured(body.model_extra, parameters.EMBEDDINGS)
    key = caller_key(request)
    if not key and not settings.openai_compat_free_mode:
        known_model(runner, body.model)
    made = await runner.embeddings.run(
        embedding_request(body), key, settings.openai_compat_free_mode, context
    )
    return Response(answer(made, body.encoding_format or "float"), media_type="application/json")


def embedding_request(body: EmbeddingsRequest) -> EmbeddingRequest:
    """The request's inputs as texts, or as token arrays (a single array is one input)."""
    given = body.input
    texts: tuple[str, ...] = ()
    tokens: tuple[tuple[int, ...], ...] = ()
    if isinstance(given, str):
        texts = (given,)
    elif given and all(isinstance(item, int) for item in given):
        tokens = (tuple(given),)  # type: ignore[arg-type]  # list[int], checked above
    elif given and isinstance(given[0], list):
        tokens = tuple(tuple(item) for item in given)
    else:
        texts = tuple(given)  # type: ignore[arg-type]  # list[str] (or empty)
    return EmbeddingRequest(
        model=body.model,
        texts=texts,
        tokens=tokens,
        dimensions=body.dimensions,
        input_type=body.input_type,
        normalize=body.normalize,
        user=body.user or "",
    )


def answer(made: Embeddings, encoding: Literal["float", "base64"]) -> bytes:
    """The answer's JSON, written a vector at a time (see the module)."""
    data = b",".join(
        b'{"object":"embedding","index":%d,"embedding":%s}' % (index, _vector(vector, encoding))
        for index, vector in enumerate(made.vectors)
    )
    tokens = made.input_tokens
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    tail = {"model": made.model, "usage": usage}
    return b'{"object":"list","data":[%s],%s' % (data, json.dumps(tail).encode()[1:])


def _vector(vector: bytes, encoding: Literal["float", "base64"]) -> bytes:
    if encoding == "base64":
        return b'"%s"' % base64.b64encode(vector)
    return json.dumps(array("f", vector).tolist()).encode()
