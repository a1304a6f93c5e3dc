"""Text a turn may carry, as every API validates it: no NUL, no lone surrogate (not UTF-8).

Either would travel as far as the cache key, the upstream's JSON body or the error body and fail
there with a 500; refused at the edge, it is a 4xx naming the field.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator

# A JSON escape of a surrogate: the only way a request body (UTF-8 by then) can carry a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MAX_NAME = 64  # of a name (a field, a key) echoed in an error message


def clean_text(value: str) -> str:
    """Refuse text that cannot travel: NUL characters, and lone surrogates (not UTF-8)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it has a lone surrogate)") from None
    return value


Text = Annotated[str, AfterValidator(clean_text)]


def bounded(name: str, limit: int = MAX_NAME) -> str:
    """A caller's name as an error may echo it: at most `limit` characters."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def unencodable_field(body: bytes) -> str | None:
    """The dotted path of the first string or key in a JSON body that is not valid Unicode.

    One pass over every string a request carries (schemas, tool definitions, image URL objects,
    metadata...), so no field is left to fail later in an encoder, the cache key or a prompt.
    Only a body with a surrogate escape is decoded: the scan costs one regex search otherwise.
    """
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        stack: list[tuple[Any, tuple[str, ...]]] = [(json.loads(body), ())]
    except (ValueError, RecursionError):
        return None  # not JSON, or nested too deep: the route's own parsing says so
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if not _encodes(node):
                return _path(where)
        elif isinstance(node, dict):
            for key in node:
                if not _encodes(key):
                    return _path(where)
            stack.extend((node[key], (*where, key)) for key in reversed(list(node)))
        elif isinstance(node, list):
            stack.extend((item, (*where, str(i))) for i, item in reversed(list(enumerate(node))))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _path(where: tuple[str, ...]) -> str:
    return ".".join(bounded(part.encode(errors="replace").decode()) for part in where) or "body"


def text_tokens(pieces: list[str]) -> int:
    """The tokens of text (in pieces, as streamed), as a tokenizer would count them.

    Where no provider's tokenizer runs here (a stream cut short: no provider reports usage
    before its end), text is counted as BPE tokenizers count it, rounded up: 4 ASCII
    characters a token (English runs 4 to 4.5), and a token for every other character (a
    Hangul syllable is one or less on OpenAI's and Claude's tokenizers); never fewer than one
    token a piece, which is exact for the local model (a token a piece).
    """
    text = "".join(pieces)
    ascii_count = len(text.encode("ascii", "ignore"))
    return max(len(pieces), -(-ascii_count // 4) + len(text) - ascii_count)
