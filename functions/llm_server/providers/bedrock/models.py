"""What a Bedrock model id names: its vendor and family, and what that family can do.

Ids come as foundation models (`anthropic.claude-3-5-haiku-20241022-v1:0`), cross-region
inference profiles (`us.amazon.nova-lite-v1:0`, `global.anthropic...`) or ARNs of either.
"""

from __future__ import annotations

import re

PROFILE_PREFIXES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"})
VENDORS = frozenset(
    {
        "ai21",
        "amazon",
        "anthropic",
        "cohere",
        "deepseek",
        "luma",
        "meta",
        "mistral",
        "openai",
        "qwen",
        "stability",
        "twelvelabs",
        "writer",
    }
)
FORCED_TOOL_FAMILIES = frozenset({"anthropic", "amazon.nova"})
"""Families whose Converse takes `toolChoice` `any` and `tool`: `tool_choice=required`, a named
function, and JSON answers (a forced answer tool) run on them."""
CACHE_POINT_FAMILIES = frozenset({"anthropic", "amazon.nova"})
"""Families that take a `cachePoint` (prompt caching)."""
TITAN_EMBEDDINGS = (
    "amazon.titan-embed-text",
    "amazon.titan-embed-g1-text",
    "amazon.titan-embed-image",
)
"""Titan's embedding models (Text G1 and V2, Multimodal G1 for text): one text an InvokeModel."""
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
"""Converse's `document` formats, by the media type a caller gives."""
MAX_DOCUMENTS = 5
MAX_DOCUMENT_BYTES = 4_718_592
"""Converse's limits: 5 documents a request, 4.5 MB each (Bedrock's DocumentBlock)."""
_THINKERS = re.compile(r"^anthropic\.claude-(3-7|sonnet-4|opus-4|haiku-4|sonnet-5|opus-5|haiku-5)")
_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:[a-z-]+/(?P<id>.+)$")


def base_id(model: str) -> str:
    """The foundation model id inside an ARN or an inference profile's id."""
    match = _ARN.match(model)
    model = match["id"] if match else model
    prefix, dot, rest = model.partition(".")
    return rest if dot and prefix in PROFILE_PREFIXES else model


def family(model: str) -> str:
    """`anthropic`, `amazon.nova`, `meta`... : the vendor, and Amazon's line of models."""
    vendor, _, name = base_id(model).partition(".")
    if vendor == "amazon":
        return f"amazon.{name.split('-', 1)[0]}"
    return vendor


def embedding_family(model: str) -> str | None:
    """`titan` or `cohere` for a model that embeds text (`bedrock/embeddings.py`), else None."""
    base = base_id(model)
    if base.startswith(TITAN_EMBEDDINGS):
        return "titan"
    if base.startswith("cohere.embed"):
        return "cohere"
    return None


def thinks(model: str) -> bool:
    """Whether Converse takes a thinking budget for `model` (Claude 3.7 and later)."""
    return bool(_THINKERS.match(base_id(model)))


def is_bedrock_id(model: str) -> bool:
    """Whether `model` is named the way Bedrock names models (listed here or not)."""
    if _ARN.match(model):
        return True
    vendor, dot, name = base_id(model).partition(".")
    return bool(dot and name) and vendor in VENDORS
