"""The reply's format, as the APIs ask for it: `text`, `json_object`, or a `json_schema`.

Chat Completions nests the schema (`{"type": "json_schema", "json_schema": {"name", "schema",
"strict"}}`); the Responses API's `text.format` puts it beside `type`. Both are read here, and
the native API's `response_format` takes either, or just the type's name.
"""

from __future__ import annotations

from typing import Any

from llm_server.exceptions import BadRequestException
from llm_server.values import OutputFormat

MAX_SCHEMA_DEPTH = 64
"""JSON levels a schema may nest (an object's properties are two): every consumer of a schema
(the cache key, a provider's JSON body, the local grammar) walks it recursively, and Python's
recursion limit is hit near 1,000; OpenAI's strict schemas nest at most 10 objects."""


def parse_output_format(value: Any, param: str) -> OutputFormat:
    """`value` as an `OutputFormat`, or a 400 naming `param`."""
    if value in ("text", "json_object"):
        return OutputFormat(type=value, param=param)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return OutputFormat(type=kind, param=param)
    spec = value.get("json_schema", value) if isinstance(value, dict) else None
    if (
        kind != "json_schema"
        or not isinstance(spec, dict)
        or not isinstance(spec.get("schema"), dict)
    ):
        raise BadRequestException(
            f'{param} must be "text", "json_object" or a json_schema with a schema object',
            param=param,
        )
    name = spec.get("name")
    check_depth(spec["schema"], param)
    return OutputFormat(
        type="json_schema",
        name=name if isinstance(name, str) else "",
        schema=spec["schema"],
        strict=bool(spec.get("strict")),
        param=param,
    )


def check_depth(schema: Any, param: str) -> None:
    """A 400 naming `param` if `schema` nests past MAX_SCHEMA_DEPTH (walked level by level)."""
    level: list[Any] = [schema]
    for _ in range(MAX_SCHEMA_DEPTH):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return
    raise BadRequestException(
        f"{param} nests deeper than {MAX_SCHEMA_DEPTH} levels", param=param, code="schema_too_deep"
    )
