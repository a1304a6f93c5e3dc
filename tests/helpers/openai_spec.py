"""OpenAI's published OpenAPI document (`../shared/openai-openapi/openapi.yaml`), as JSON Schema.

The document still writes OpenAPI 3.0's `nullable: true`; it is read as `anyOf [..., null]`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

_RELATIVE = Path("shared") / "openai-openapi" / "openapi.yaml"


def _find_spec() -> Path | None:
    """`shared/openai-openapi/openapi.yaml` beside the checkout (or beside any folder above it)."""
    for folder in Path(__file__).resolve().parents[2].parents:
        if (folder / _RELATIVE).is_file():
            return folder / _RELATIVE
    return None


SPEC = _find_spec()


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
    if SPEC is None:
        pytest.skip(f"no {_RELATIVE} beside the checkout (CI lays shared/ there)")
    document = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return _nullable(document["components"])


def validate(instance: Any, schema_name: str) -> None:
    """Raise `jsonschema.ValidationError` unless `instance` is a valid `schema_name`."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": _components()}
    jsonschema.validate(instance, schema, cls=jsonschema.Draft202012Validator)
