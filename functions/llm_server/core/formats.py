"""The reply's format, as the APIs ask for it: `text`, `json_object`, or a `json_schema`.

Chat Completions nests the schema (`{"type": "json_schema", "json_schema": {"name", "schema",
"strict"}}`); the Responses API's `text.format` puts it beside `type`. Both are read here, and
the native API's `response_format` takes either, or just the type's name.
"""

from __future__ import annotations

from typing import Any

from llm_server.exceptions import BadRequestException
from llm_server.values import OutputFormat


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
    return OutputFormat(
        type="json_schema",
        name=name if isinstance(name, str) else "",
        schema=spec["schema"],
        strict=bool(spec.get("strict")),
        param=param,
    )
