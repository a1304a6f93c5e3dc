"""Text a turn may carry, as every API validates it: no NUL, no lone surrogate (not UTF-8).

Either would travel as far as the cache key, the upstream's JSON body or the error body and fail
there with a 500; refused at the edge, it is a 4xx naming the field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


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
