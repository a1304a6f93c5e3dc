"""OpenAI request parameters: each is honoured or refused by name with a 400, never dropped.

The request models (`protocol.py`) hold what this server honours. Everything else a request
carries is checked here: a parameter OpenAI defines that changes nothing at the value sent (a
default, or metadata such as `user`) passes; one that would change the answer, and any name
OpenAI does not define, is a 400 naming it (OpenAI answers unknown names the same way).
"""

from __future__ import annotations

from typing import Any

from llm_server.core.text import bounded
from llm_server.exceptions import BadRequestException

ANY = object()
_SAMPLING_NO_OPS: dict[str, tuple[Any, ...]] = {
    "presence_penalty": (0, 0.0, None),
    "frequency_penalty": (0, 0.0, None),
    "service_tier": ("auto", "default", None),
    "user": (ANY,),
    "metadata": (ANY,),
    "safety_identifier": (ANY,),
    "prompt_cache_key": (ANY,),
}
CHAT_COMPLETIONS: dict[str, tuple[Any, ...]] = {
    **_SAMPLING_NO_OPS,
    "store": (False, None),  # OpenAI's stored chat completions: not kept here
    "functions": ([], None),
    "function_call": ("none", "auto", None),
    "logit_bias": ({}, None),
    "modalities": (["text"], None),
    "audio": (None,),
    "prediction": (None,),
    "web_search_options": (None,),
    "verbosity": (None,),
}
RESPONSES: dict[str, tuple[Any, ...]] = {
    **_SAMPLING_NO_OPS,
    "text": (ANY,),  # its format is checked by `translate.text_format`
    "truncation": ("disabled", None),
    "max_tool_calls": (None,),
    "stream_options": (ANY,),
    "prompt": (None,),
}
COMPLETIONS: dict[str, tuple[Any, ...]] = {
    **{name: CHAT_COMPLETIONS[name] for name in ("logit_bias", "user")},
    **{name: _SAMPLING_NO_OPS[name] for name in ("presence_penalty", "frequency_penalty")},
    "top_p": (1, 1.0, None),
    "stop": (None, [], ""),
    "seed": (None,),
    "suffix": (None, ""),
    "echo": (False, None),
    "best_of": (1, None),
    "logprobs": (None, 0),
}
EMBEDDINGS: dict[str, tuple[Any, ...]] = {}  # every parameter it takes is a field
_PENALTIES = ("presence_penalty", "frequency_penalty")


def refuse_unhonoured(extra: dict[str, Any] | None, known: dict[str, tuple[Any, ...]]) -> None:
    """Raise a 400 naming the first parameter in `extra` that would be silently dropped."""
    for name, value in (extra or {}).items():
        if name not in known:
            raise BadRequestException(
                f"Unrecognized request argument supplied: {bounded(name)}",
                param=bounded(name),
                code="unknown_parameter",
            )
        if name in _PENALTIES and isinstance(value, int | float) and not -2 <= value <= 2:
            raise BadRequestException(f"{name} must be between -2 and 2", param=name)
        allowed = known[name]
        if ANY not in allowed and value not in allowed:
            raise BadRequestException(
                f"{name} is not supported by this server (only {_shown(allowed)})",
                param=name,
                code="unsupported_parameter",
            )


def _shown(allowed: tuple[Any, ...]) -> str:
    return " or ".join("omitted" if value is None else repr(value) for value in allowed)
