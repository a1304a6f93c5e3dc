r"""JSON schemas as llama.cpp grammars, within bounds a shared model can afford.

A caller's schema (a `json_schema` response format, a tool's parameters) becomes a GBNF
grammar through llama-cpp-python's converter, a dependency whose faults are ours to fence:
- it writes repetitions out in full (`minItems: 100000` is a 1.7 MB grammar): counts past
  `MAX_REPEAT` and grammars past `MAX_GRAMMAR_BYTES` are refused;
- it rejects what it cannot read with bare assertions and index errors: any converter error is a
  400 naming the field;
- it writes grammars llama.cpp's own parser rejects (`\d` in a pattern, `{"enum": []}`), and
  llama.cpp then hands back a NULL sampler that crashes the process when used: every grammar is
  parsed by llama.cpp once before it is used (`Grammar.checked`), a NULL a 400;
- a pattern's long run of optional items (`^(a?){100}$`) makes llama.cpp's grammar stacks grow
  with every token (4 tokens took 13 s at 100): runs past `MAX_OPTIONAL_RUN` are refused;
- its string rules admit raw control characters, `"` and `\` where JSON needs them escaped:
  they are written to admit only what JSON admits (`_json_safe`).
The regex shorthands `\d`, `\w` and `\s` in patterns are written as the classes they mean.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_server.exceptions import BadRequestException

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

MAX_REPEAT = 1000
MAX_GRAMMAR_BYTES = 256 * 1024
MAX_OPTIONAL_RUN = 16  # optional pattern items in a row: 16 costs nothing measurable, 60 1.6 s
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
# What a JSON string may hold unescaped: not `"`, `\` or a control character.
_PLAIN = r'"\\\x7F\x00-\x1F'
_SHORTHANDS = {"d": "0-9", "w": "0-9A-Za-z_", "s": " "}  # `\s`: a space (JSON escapes the rest)
_NEGATED = {"D": "0-9", "W": "0-9A-Za-z_", "S": " "}
# The converter's rules for a string's characters, and the same admitting only what JSON does.
_UNSAFE_RULES = {
    'char ::= [^"\\\\] |': f"char ::= [^{_PLAIN}] |",
    "dot ::= [^\\x0A\\x0D]": f"dot ::= [^{_PLAIN}]",
}


@dataclass(frozen=True)
class Grammar:
    """A grammar written from a caller's schema, and the request field it came from."""

    text: str
    param: str

    def checked(self, llama: Llama) -> LlamaGrammar:
        """The grammar for llama.cpp, once its own parser has accepted it (else a 400).

        llama.cpp answers a grammar it cannot parse with a NULL sampler, which llama-cpp-python
        would use anyway (a segfault): so it is parsed here first, on the model's vocabulary.
        """
        import llama_cpp
        from llama_cpp.llama_grammar import LlamaGrammar

        sampler = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, self.text.encode(), b"root"
        )
        if not sampler:
            raise _refused(self.param, "llama.cpp could not parse the grammar it makes")
        llama_cpp.llama_sampler_free(sampler)
        return LlamaGrammar.from_string(self.text, verbose=False)


def compiled(write: Callable[[Any], str], schema: Any, param: str) -> Grammar:
    """The grammar `write` makes of `schema` (checked and made safe first); a 400 naming `param`.

    Whatever reading the schema raises is the schema's fault, never the server's: a 400 (the
    converter's bare asserts and index errors, and a schema or pattern nested too deep to read).
    """
    try:
        text = write(_prepared(schema, param))
    except BadRequestException:
        raise
    except Exception as exc:
        raise _refused(param, f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if len(text) > MAX_GRAMMAR_BYTES:
        raise BadRequestException(
            f"{param}: this JSON schema is too large a grammar for the local model",
            param=param,
        )
    return Grammar(_json_safe(text), param)


def schema_grammar(schema: dict[str, Any] | None, param: str) -> Grammar:
    """Any JSON object (no schema), or JSON valid against `schema`."""
    import json

    from llama_cpp import llama_grammar

    if schema is None:
        return compiled(lambda _: llama_grammar.JSON_GBNF, None, param)
    return compiled(lambda s: llama_grammar.json_schema_to_gbnf(json.dumps(s)), schema, param)


def _refused(param: str, why: str) -> BadRequestException:
    return BadRequestException(
        f"{param}: the local model cannot follow this JSON schema ({why})", param=param
    )


def _json_safe(text: str) -> str:
    for unsafe, safe in _UNSAFE_RULES.items():
        text = text.replace(unsafe, safe)
    return text


def _prepared(schema: Any, param: str) -> Any:
    """A copy of `schema` with its counts checked and its patterns checked and rewritten."""
    schema = copy.deepcopy(schema)
    stack = [schema]
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
            if isinstance(node.get("pattern"), str):
                node["pattern"] = _Pattern(node["pattern"], param).rewritten()
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


class _Pattern:
    """A regex pattern read as the converter reads it: its cost measured, its shorthands written.

    The cost measure is the longest run of optional items in a row once counted repetitions are
    written out (`(a?){8}` is 8, `(a?b?){4}` is 8): that run, not the pattern's length, is what
    multiplies llama.cpp's grammar stacks. `a{0,100}` and `(a*)*` are written as nested rules,
    which stay cheap, so they count 1.
    """

    def __init__(self, text: str, param: str) -> None:
        self._text = text
        self._param = param
        self._at = 0
        self._out: list[str] = []

    def rewritten(self) -> str:
        r"""The pattern with `\d`, `\w`, `\s` (and their negations) as character classes."""
        self._alternation()
        if self._at < len(self._text):  # a `)` with no `(`: the converter will say so
            self._out.append(self._text[self._at :])
        return "".join(self._out)

    def _alternation(self) -> tuple[bool, int]:
        """(may match nothing, optional items it contributes to a run around it)."""
        nullable, weight = self._sequence()
        while self._peek() == "|":
            self._emit(1)
            more_nullable, more_weight = self._sequence()
            nullable, weight = nullable or more_nullable, max(weight, more_weight)
        return nullable, weight

    def _sequence(self) -> tuple[bool, int]:
        nullable, weight, run = True, 0, 0
        while (char := self._peek()) is not None and char not in "|)":
            item_nullable, item_weight = self._quantified(self._atom())
            run = run + item_weight if item_nullable else 0
            if run > MAX_OPTIONAL_RUN:
                raise _refused(
                    self._param,
                    f"a pattern may have at most {MAX_OPTIONAL_RUN} optional items in a row: "
                    "each one more multiplies the work of every token",
                )
            nullable = nullable and item_nullable
            weight += item_weight if item_nullable else 0
        return nullable, weight

    def _atom(self) -> tuple[bool, int]:
        char = self._peek()
        if char == "(":
            self._emit(1)
            inner = self._alternation()
            if self._peek() == ")":
                self._emit(1)
            return inner
        if char == "[":
            self._bracket()
        elif char == "\\":
            self._escape()
        elif char in ("^", "$"):  # anchors: the converter requires them around the pattern
            self._emit(1)
            return True, 0
        else:
            self._emit(1)
        return False, 0

    def _quantified(self, atom: tuple[bool, int]) -> tuple[bool, int]:
        nullable, weight = atom
        char = self._peek()
        if char in ("?", "*", "+"):
            self._emit(1)
            optional = nullable or char != "+"
            return optional, max(weight, 1) if optional else 0
        if char != "{":
            return atom
        end = self._text.find("}", self._at)
        if end < 0:
            self._emit(len(self._text) - self._at)
            return atom
        bounds = self._text[self._at + 1 : end].split(",")
        self._emit(end + 1 - self._at)
        try:
            low = int(bounds[0] or 0)
            high = int(bounds[-1]) if bounds[-1].strip() else None
        except ValueError:
            return atom  # the converter refuses the quantifier itself
        if nullable:  # written out: `high` (or `low`, then a loop) copies of something optional
            return True, max(1, weight) * max(1, high if high is not None else low)
        return (low == 0), (1 if low == 0 else 0)

    def _bracket(self) -> None:
        end = self._at + 1
        negated = self._text.startswith("^", end)
        body: list[str] = []
        end += negated
        while end < len(self._text) and self._text[end] != "]":
            if self._text[end] == "\\" and end + 1 < len(self._text):
                letter = self._text[end + 1]
                body.append(_SHORTHANDS.get(letter, self._text[end : end + 2]))
                end += 2
            else:
                body.append(self._text[end])
                end += 1
        inner = "".join(body)
        self._out.append(f"[^{inner}{_PLAIN}]" if negated else f"[{inner}]")
        self._at = min(end + 1, len(self._text))

    def _escape(self) -> None:
        letter = self._text[self._at + 1 : self._at + 2]
        if letter in _SHORTHANDS:
            self._out.append(f"[{_SHORTHANDS[letter]}]")
        elif letter in _NEGATED:
            self._out.append(f"[^{_NEGATED[letter]}{_PLAIN}]")
        else:
            self._out.append(self._text[self._at : self._at + 2])
        self._at += 2

    def _peek(self) -> str | None:
        return self._text[self._at] if self._at < len(self._text) else None

    def _emit(self, count: int) -> None:
        self._out.append(self._text[self._at : self._at + count])
        self._at += count
