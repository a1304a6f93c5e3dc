"""Bedrock's embedding models through `InvokeModel`: each family's request body and answer.

- Amazon Titan Text Embeddings (G1 `amazon.titan-embed-text-v1`, V2 `...-v2:0`) and
  Multimodal Embeddings G1 (`amazon.titan-embed-image-v1`, for text) embed one text a call, so
  a request's texts are as many calls (the provider runs a few at once); V2 takes `dimensions`
  (256, 512, 1024) and `normalize`, Multimodal `dimensions` (256, 384, 1024, its
  `outputEmbeddingLength`). Their answer counts their tokens (`inputTextTokenCount`).
- Cohere Embed (v3 English and multilingual, v4) takes up to 96 texts a call, so a request is
  batched; `input_type` is `search_document` unless the request says otherwise (queries should
  say `search_query`); v4 takes `dimensions` (its `output_dimension`). Over its length a text is
  an error, never cut (`truncate: NONE`). Bedrock counts its tokens in a response header.
"""

from __future__ import annotations

import json
import math
from array import array
from typing import Any

from llm_server.exceptions import BadRequestException, OpenAIClientException
from llm_server.providers.base import EmbeddingLimits
from llm_server.providers.bedrock.models import base_id, embedding_family
from llm_server.values import EmbeddingRequest

MAX_INPUTS = 2048
"""Inputs a request, as OpenAI's limit: Titan's are that many calls, Cohere's 22 batches."""
TITAN_MAX_CHARS = 50_000
"""Characters a Titan text (Bedrock's limit; its 8,192 tokens are Bedrock's to count)."""
MULTIMODAL = "amazon.titan-embed-image"
COHERE_V3_MAX_CHARS = 2048
COHERE_BATCH = 96
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
TOKEN_HEADER = "x-amzn-bedrock-input-token-count"


def limits(model: str) -> EmbeddingLimits:
    """What a request for `model` may hold and set, by its family and version."""
    base = base_id(model)
    if embedding_family(model) == "titan":
        if base.startswith("amazon.titan-embed-text-v2"):
            dimensions = frozenset({256, 512, 1024})
            return EmbeddingLimits(
                MAX_INPUTS, TITAN_MAX_CHARS, dimensions, frozenset({"dimensions", "normalize"})
            )
        if base.startswith(MULTIMODAL):  # its 256 tokens a text are Bedrock's to count
            return EmbeddingLimits(
                MAX_INPUTS, None, frozenset({256, 384, 1024}), frozenset({"dimensions"})
            )
        return EmbeddingLimits(MAX_INPUTS, TITAN_MAX_CHARS)
    if base.startswith("cohere.embed-v4"):
        dimensions = frozenset({256, 512, 1024, 1536})
        return EmbeddingLimits(
            MAX_INPUTS, None, dimensions, frozenset({"dimensions", "input_type"})
        )
    return EmbeddingLimits(MAX_INPUTS, COHERE_V3_MAX_CHARS, frozenset(), frozenset({"input_type"}))


def bodies(request: EmbeddingRequest) -> list[tuple[bytes, tuple[str, ...]]]:
    """The `InvokeModel` bodies for the request, in input order, each with the texts it holds."""
    texts = request.texts
    if embedding_family(request.model) == "titan":
        return [(_titan_body(text, request), (text,)) for text in texts]
    input_type = request.input_type or "search_document"
    if input_type not in INPUT_TYPES:
        raise BadRequestException(
            f"input_type must be one of {', '.join(INPUT_TYPES)} for {request.model}",
            param="input_type",
        )
    batches = [texts[at : at + COHERE_BATCH] for at in range(0, len(texts), COHERE_BATCH)]
    return [(_cohere_body(batch, input_type, request), batch) for batch in batches]


def _titan_body(text: str, request: EmbeddingRequest) -> bytes:
    body: dict[str, Any] = {"inputText": text}
    if request.dimensions is not None and base_id(request.model).startswith(MULTIMODAL):
        body["embeddingConfig"] = {"outputEmbeddingLength": request.dimensions}
    elif request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.normalize is not None:
        body["normalize"] = request.normalize
    return json.dumps(body).encode()


def _cohere_body(texts: tuple[str, ...], input_type: str, request: EmbeddingRequest) -> bytes:
    body: dict[str, Any] = {
        "texts": list(texts),
        "input_type": input_type,
        "embedding_types": ["float"],
        "truncate": "NONE",
    }
    if request.dimensions is not None:
        body["output_dimension"] = request.dimensions
    return json.dumps(body).encode()


def read(
    model: str, raw: bytes, headers: dict[str, str], texts: tuple[str, ...]
) -> tuple[list[bytes], int]:
    """One call's vectors (float32 bytes, in order) and the tokens it counted.

    Where Bedrock leaves its count out (an emulator), 2 UTF-8 bytes a token of the texts sent,
    as the quota reserves them: never less than the call may have cost.
    """
    try:
        answer = json.loads(raw)
    except ValueError:
        raise malformed(model) from None
    if not isinstance(answer, dict):
        raise malformed(model)
    vectors: Any
    if embedding_family(model) == "titan":
        vectors, tokens = [answer.get("embedding")], answer.get("inputTextTokenCount")
    else:
        found = answer.get("embeddings")
        vectors = found.get("float") if isinstance(found, dict) else found
        tokens = _header_count(headers)
    if not isinstance(vectors, list) or len(vectors) != len(texts):
        raise malformed(model)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        tokens = sum(len(text.encode()) // 2 + 1 for text in texts)
    return [_packed(vector, model) for vector in vectors], tokens


def _packed(vector: Any, model: str) -> bytes:
    """A JSON vector as float32 bytes; anything but a list of finite numbers is a 502."""
    if not isinstance(vector, list) or not vector:
        raise malformed(model)
    try:
        packed = array("f", vector)
    except TypeError:
        raise malformed(model) from None
    if not all(map(math.isfinite, packed)):  # no JSON number can say NaN to the caller
        raise malformed(model)
    return packed.tobytes()


def _header_count(headers: dict[str, str]) -> int | None:
    value = headers.get(TOKEN_HEADER, "")
    return int(value) if value.isdigit() else None


def malformed(model: str) -> OpenAIClientException:
    """An answer that is not the embedding it should be: Bedrock's fault, a 502."""
    return OpenAIClientException(
        f"Bedrock's answer for {model} is not the embedding it should be",
        code="upstream_malformed",
    )
