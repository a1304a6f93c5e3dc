"""`POST /embeddings` as OpenAI takes it, and its answer as our `Embeddings`.

The vectors are always asked for as base64 (`encoding_format`), whatever the caller wants: each
is then the float32 bytes OpenAI computed, kept as they come (no JSON numbers parsed into Python
floats and packed again), and a sixth of the JSON to read. The API encodes them for the caller.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from llm_server.providers.openai.errors import malformed
from llm_server.values import EmbeddingRequest, Embeddings

MAX_INPUTS = 2048
"""Inputs OpenAI takes in one request (its own limit; tokens a text are its to count)."""


def embeddings_body(request: EmbeddingRequest) -> dict[str, Any]:
    """The request's JSON: its texts (or token arrays), base64 vectors, `dimensions`, `user`."""
    inputs: list[Any] = [list(tokens) for tokens in request.tokens] or list(request.texts)
    body: dict[str, Any] = {
        "model": request.model,
        "input": inputs,
        "encoding_format": "base64",
    }
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user:
        body["user"] = request.user
    return body


def to_embeddings(reply: dict[str, Any], count: int, attempts: int) -> Embeddings:
    """The vectors of a reply, in input order; a reply that is not one for `count` is a 502."""
    data = reply.get("data")
    if not isinstance(data, list) or len(data) != count:
        raise malformed()
    vectors: list[bytes] = [b""] * count
    for item in data:
        index, vector = _item(item, count)
        vectors[index] = vector
    if any(not vector for vector in vectors):  # an index twice, another never
        raise malformed()
    usage = reply.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    model = reply.get("model")
    if not isinstance(tokens, int) or not isinstance(model, str):
        raise malformed()
    return Embeddings(tuple(vectors), model, tokens, attempts)


def _item(item: Any, count: int) -> tuple[int, bytes]:
    """One `embedding` object's index and float32 bytes."""
    if not isinstance(item, dict):
        raise malformed()
    index, encoded = item.get("index"), item.get("embedding")
    if not isinstance(index, int) or not 0 <= index < count or not isinstance(encoded, str):
        raise malformed()
    try:
        vector = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise malformed() from None
    if not vector or len(vector) % 4:
        raise malformed()
    return index, vector
