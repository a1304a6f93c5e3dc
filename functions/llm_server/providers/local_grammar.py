"""JSON schemas as llama.cpp grammars, within bounds a shared model can afford.

A caller's schema (a `json_schema` response format, a tool's parameters) becomes a GBNF
grammar. llama.cpp's converter writes repetitions out in full (`minItems: 100000` is a 1.7 MB
grammar) and rejects what it cannot read with bare assertions. Both would hurt others on the one
model worker: so counts past `MAX_REPEAT` and grammars past `MAX_GRAMMAR_BYTES` are refused, and
any schema the converter cannot read is a 400 naming the field, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llm_server.exceptions import BadRequestException

if TYPE_CHECKING:
    from llama_cpp.llama_grammar import LlamaGrammar

MAX_REPEAT = 1000
MAX_GRAMMAR_BYTES = 256 * 1024
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")


def compiled(write: Callable[[], str], schema: Any, param: str) -> LlamaGrammar:
    """The grammar `write` makes of `schema`, checked; a 400 naming `param` if it cannot be."""
    from llama_cpp.llama_grammar import LlamaGrammar

    _check_counts(schema, param)
    try:
        text = write()
    except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadRequestException(
            f"{param}: the local model cannot follow this JSON schema ({str(exc)[:200]})",
            param=param,
        ) from None
    if len(text) > MAX_GRAMMAR_BYTES:
        raise BadRequestException(
            f"{param}: this JSON schema is too large a grammar for the local model",
            param=param,
        )
    return LlamaGrammar.from_string(text, verbose=False)


def schema_grammar(schema: dict[str, Any] | None, param: str) -> LlamaGrammar:
    """Any JSON object (no schema), or JSON valid against `schema`."""
    import json

    from llama_cpp import llama_grammar

    if schema is None:
        return compiled(lambda: llama_grammar.JSON_GBNF, None, param)
    return compiled(lambda: llama_grammar.json_schema_to_gbnf(json.dumps(schema)), schema, param)


def _check_counts(node: Any, param: str) -> None:
    """Refuse a repetition count the grammar would have to write out past MAX_REPEAT."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name in _COUNTS:
                value = node.get(name)
                if isinstance(value, int | float) and value > MAX_REPEAT:
                    raise BadRequestException(
                        f"{param}: the local model follows {name} up to {MAX_REPEAT}",
                        param=param,
                    )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
