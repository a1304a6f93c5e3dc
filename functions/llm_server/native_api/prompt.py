"""Prompt assembly: the system prompt from its sections, and the conversation from its history."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from llm_server.native_api.schemas import HistoryMessage
from llm_server.values import ChatMessage, Role

_PREFIXES: dict[str, Role] = {
    "user": "user",
    "assistant": "assistant",
    "사용자": "user",
    "어시스턴트": "assistant",
}
_PREFIX_RE = re.compile(r"^\s*(user|assistant|사용자|어시스턴트)\s*:\s?", re.IGNORECASE)


def compose_system_prompt(
    system_message: str,
    role: str,
    memory_context: Sequence[str],
    instructions: str,
    default_system_message: str,
) -> str:
    """Join the system message and the non-empty role, memory and instructions sections.

    The format (also in docs/native-api.md)::

        <system_message, or the default when blank>

        ## Role
        <role>

        ## Memory
        - <memory item>

        ## Instructions
        <instructions>
    """
    sections = [system_message.strip() or default_system_message.strip()]
    if role.strip():
        sections.append(f"## Role\n{role.strip()}")
    memory = [f"- {item.strip()}" for item in memory_context if item.strip()]
    if memory:
        sections.append("## Memory\n" + "\n".join(memory))
    if instructions.strip():
        sections.append(f"## Instructions\n{instructions.strip()}")
    return "\n\n".join(sections)


def parse_history(entries: Iterable[str | HistoryMessage]) -> list[ChatMessage]:
    """Turn `conversation_history` into chat turns.

    An object keeps its role. A string prefixed "user:" or "assistant:" (or "사용자:"/"어시스턴트:",
    any case) takes that role, prefix removed. Any other string takes the role opposite to the
    previous turn, starting with "user", so a plain list alternates user/assistant. Blank entries
    are skipped.
    """
    messages: list[ChatMessage] = []
    for entry in entries:
        message = _to_message(entry, previous=messages[-1].role if messages else None)
        if message.content.strip():
            messages.append(message)
    return messages


def _to_message(entry: str | HistoryMessage, previous: Role | None) -> ChatMessage:
    if isinstance(entry, HistoryMessage):
        return ChatMessage(entry.role, entry.content)
    match = _PREFIX_RE.match(entry)
    if match:
        return ChatMessage(_PREFIXES[match.group(1).lower()], entry[match.end() :])
    return ChatMessage("assistant" if previous == "user" else "user", entry)
