"""Tool calling on the local model: the tools in its prompt, a grammar for the call, the call read.

A call is written `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (the Hermes style
small instruct models are trained on). llama.cpp's grammar-constrained decoding makes it
well-formed: the name is one of the offered functions and the arguments are valid against that
function's schema. With `tool_choice` `required` (or a function named) the grammar admits only a
call; with `auto` it admits a call or plain text that does not start with `<`, so whichever the
model writes, it is either a valid call or an answer. One call per reply: a 135M model does not
plan parallel calls, and one is within what `parallel_tool_calls` allows.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from llm_server.providers.local_grammar import Grammar, compiled, schema_grammar
from llm_server.values import ChatMessage, GenerationRequest, OutputFormat, ToolCall, Tools

OPEN, CLOSE = "<tool_call>", "</tool_call>"


def tools_prompt(tools: Tools) -> str:
    """What the system prompt says about the offered functions and how to call one."""
    specs = [
        {"name": t.name, "description": t.description, "parameters": t.schema}
        for t in tools.offered
    ]
    must = "You must call one of them." if tools.choice == "required" else ""
    return (
        "You can call these functions:\n<tools>\n"
        + "\n".join(json.dumps(spec, ensure_ascii=False) for spec in specs)
        + f"\n</tools>\nTo call one, reply with {OPEN}"
        + '{"name": <function name>, "arguments": <arguments object>}'
        + f"{CLOSE} and nothing else. {must}"
    ).strip()


def call_grammar(tools: Tools, answer: OutputFormat | None = None) -> Grammar:
    """A grammar admitting one call of an offered function or (with `auto`) an answer.

    The answer is plain text, or with a structured output JSON valid against its schema (any
    object for `json_object`): agent frameworks send tools and a typed result together.
    """
    answer_schema: dict[str, Any] | None = None
    if answer is not None and answer.type != "text":
        schema_grammar(answer.schema, answer.param)  # its own faults, named by its own field
        answer_schema = answer.schema if answer.schema is not None else {"type": "object"}
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.schema},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools.offered
    ]
    schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    both = {"call": schema, "answer": answer_schema}
    return compiled(lambda prepared: _call_rules(prepared, tools.choice), both, "tools")


def _call_rules(schemas: dict[str, Any], choice: str) -> str:
    from llama_cpp.llama_grammar import SchemaConverter

    converter = SchemaConverter(
        prop_order={"name": 0, "arguments": 1}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    converter.visit(converter.resolve_refs(schemas["call"], "tools"), "call")
    if schemas["answer"] is not None:
        converter.visit(converter.resolve_refs(schemas["answer"], "answer"), "answer")
    rules = [converter.format_grammar(), f'tool-call ::= "{OPEN}" call "{CLOSE}"']
    if choice == "required":
        rules.append("root ::= tool-call")
    elif schemas["answer"] is not None:
        rules.append("root ::= tool-call | answer")
    else:
        rules += ["root ::= tool-call | free-text", r"free-text ::= [^<] [^\x00]*"]
    return "\n".join(rules)


def may_call(request: GenerationRequest) -> bool:
    """Whether this reply may be a call: tools offered, and not `auto` just after a result.

    On `auto` a 135M model answers a tool's result by making the same call again, round after
    round, so an agent never gets its answer: after a result it answers (one round of calls a
    turn; `required` or a named function still forces another call).
    """
    tools = request.options.tools
    if not tools.offered:
        return False
    after_result = bool(request.messages) and request.messages[-1].role == "tool"
    return not (tools.choice == "auto" and after_result)


def read_call(text: str) -> ToolCall | None:
    """The call `text` makes, or None when it is an answer (or a call cut short)."""
    body = text.strip()
    if not (body.startswith(OPEN) and body.endswith(CLOSE)):
        return None
    try:
        call = json.loads(body[len(OPEN) : -len(CLOSE)])
    except ValueError:
        return None
    arguments = json.dumps(call["arguments"], ensure_ascii=False)
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=call["name"], arguments=arguments)


def may_be_call(text: str) -> bool:
    """Whether streamed text so far could still become a call (so it must not be sent yet)."""
    start = text.lstrip()
    return start.startswith(OPEN) or OPEN.startswith(start)


class ReplyText:
    """A reply's text as it streams: held while it may still be a call, never call markup.

    A small model copies the tools prompt's markup into answers (an answer ending in
    `</tool_call>You can call this function` was seen). So a text reply ends where markup
    (`<tool_call>` or `</tool_call>`) would begin (`cut`), and the end of the text that could be
    its start is held back until it is known not to be.
    """

    def __init__(self, calls_allowed: bool) -> None:
        self.text = ""
        self.cut = False
        self._held = calls_allowed  # a reply that may be a call is sent when known not to be
        self._sent = 0

    def add(self, piece: str) -> str:
        """Add a streamed piece; return the text that may be sent now."""
        self.text += piece
        if self._held:
            if may_be_call(self.text):
                return ""
            self._held = False
        found = [at for mark in MARKUP if (at := self.text.find(mark, self._sent)) >= 0]
        if found:  # what was sent holds none: only the new end is searched
            self.text, self.cut = self.text[: min(found)], True
        end = len(self.text) if self.cut else len(self.text) - _markup_prefix(self.text)
        sendable = self.text[self._sent : end]
        self._sent = max(self._sent, end)
        return sendable

    def rest(self) -> str:
        """The text still unsent when the reply has ended (none for a call)."""
        if self._held:
            return ""
        rest, self._sent = self.text[self._sent :], len(self.text)
        return rest


MARKUP = (OPEN, CLOSE)


def _markup_prefix(text: str) -> int:
    """The length of the longest end of `text` that begins a piece of markup."""
    for size in range(min(len(CLOSE) - 1, len(text)), 0, -1):
        if any(mark.startswith(text[-size:]) for mark in MARKUP):
            return size
    return 0


ANSWER_NOTE = "Answer the question using this result."


def template_messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, str]]:
    """The conversation for the chat template, each tool round written in plain words.

    SmolLM2's template knows no tools (it prints a `tool` role as written), and the model copies
    `<tool_call>` markup it sees in an assistant turn: after a result it made the same call
    again, which a text reply may not hold, so 15 answers in 16 came back empty. Instead each
    call and its result go into the user turn they answer, as `name(arguments) returned:
    result`, with a line asking for the answer, and the call's assistant turn leaves the prompt
    (20 right answers in 23 on weather, time, arithmetic and search tools; 1 in 5 before).
    """
    turns: list[dict[str, str]] = []
    calls: dict[str, ToolCall] = {}
    results: dict[int, list[str]] = {}  # a user turn's index: the results written into it
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            calls.update((call.id, call) for call in message.tool_calls)
        elif message.role == "tool":
            if not turns or turns[-1]["role"] != "user":
                turns.append({"role": "user", "content": ""})
            line = _result(calls.get(message.tool_call_id), message.content)
            results.setdefault(len(turns) - 1, []).append(line)
        else:
            turns.append({"role": message.role, "content": _with_documents(message)})
    for index, lines in results.items():
        question, said = turns[index]["content"], "\n".join([*lines, ANSWER_NOTE])
        turns[index]["content"] = f"{question}\n\n{said}" if question else said
    return turns


def _with_documents(message: ChatMessage) -> str:
    """The message's text, then each text document it carries, under its name."""
    texts = [f"[{d.name}]\n{d.text}" for d in message.documents if d.text is not None]
    return "\n\n".join([message.content, *texts]) if texts else message.content


def _result(call: ToolCall | None, content: str) -> str:
    if call is None:
        return f"A tool returned: {content}"
    arguments = json.dumps(_loaded(call.arguments), ensure_ascii=False)
    return f"{call.name}({arguments}) returned: {content}"


def _loaded(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
