"""Cold-start work that FastAPI does and this app never needs, skipped.

FastAPI checks every route's body and response model (and `jsonable_encoder` every object it
does not know) against pydantic v1's `BaseModel`, only to refuse v1 models, and the check imports
the whole `pydantic.v1` package: 30-70 ms of every cold start here. A v1 model cannot exist until
something has imported `pydantic.v1`, so until then the answer is "no" without importing it;
after that, FastAPI's own check runs as before. (The same change was proposed to FastAPI as
fastapi/fastapi#16374.) FastAPI's version is pinned, and a test fails if these names move.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import fastapi.encoders
import fastapi.utils


def _only_once_v1_is_loaded(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    @functools.wraps(check)
    def guarded(value: Any) -> bool:
        return "pydantic.v1" in sys.modules and check(value)

    return guarded


def skip_pydantic_v1_import() -> None:
    """Make FastAPI's pydantic v1 checks free while `pydantic.v1` is not loaded (idempotent)."""
    for module, name in (
        (fastapi.utils, "annotation_is_pydantic_v1"),
        (fastapi.encoders, "is_pydantic_v1_model_instance"),
    ):
        check = getattr(module, name)
        if not hasattr(check, "__wrapped__"):
            setattr(module, name, _only_once_v1_is_loaded(check))
