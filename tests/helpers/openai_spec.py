"""OpenAI's published OpenAPI document (`../shared/openai-openapi/openapi.yaml`), as JSON Schema.

The document still writes OpenAPI 3.0's `nullable: true`; it is read as `anyOf [..., null]`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SPEC = Path(__file__).resolve().parents[3] / "shared" / "openai-openapi" / "openapi.yaml"


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _nullable(value) for key, value in node.items()}
        if node.pop("nullable", False):
            return {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    return node


@functools.cache
def _components() -> dict[str, Any]:
    document = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return _nullable(document["components"])


def validate(instance: Any, schema_name: str) -> None:
    """Raise `jsonschema.ValidationError` unless `instance` is a valid `schema_name`."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": _components()}
    jsonschema.validate(instance, schema, cls=jsonschema.Draft202012Validator)


def available() -> bool:
    """Whether the document is beside the project (it is in shared/, as CI lays it)."""
    return SPEC.is_file()
