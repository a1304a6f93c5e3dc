"""Reasoning in OpenAI's two shapes: asked for, returned, and sent back.

Asked: chat completions' `reasoning_effort`; the Responses API's `reasoning` (`effort`,
`summary`) with `include: ["reasoning.encrypted_content"]`. Returned: a chat completion's
`message.reasoning_content` and its streamed deltas (the field DeepSeek-style clients read),
with `thinking_blocks` (LiteLLM's shape) carrying each thought sealed; a response's `reasoning`
items, before the message and calls they preceded. Sent back: the same blocks on an assistant
message, or `reasoning` items in `input`, whose seal (`core/thoughts.py`) says which provider
made them.
"""

from __future__ import annotations

from typing import Any

from llm_server.core.thoughts import seal_of, thought_from
from llm_server.openai_api.protocol import ChatCompletionRequest, InputItem, ResponsesRequest
from llm_server.openai_api.response_objects import ReasoningItem, ReasoningText, SummaryText
from llm_server.values import Generation, Reasoning, Thought


def chat_reasoning(body: ChatCompletionRequest) -> Reasoning | None:
    """`reasoning_effort` as the turn's reasoning (`none`: the model's own, not thinking).

    With a summary asked of OpenAI's models: `reasoning_content` shows what they reasoned.
    """
    effort = body.reasoning_effort
    if effort in (None, "none"):
        return None
    return Reasoning(effort=effort, summary="auto", param="reasoning_effort")  # type: ignore[arg-type]


def responses_reasoning(body: ResponsesRequest) -> Reasoning | None:
    """`reasoning` (`effort`, `summary`) and whether `include` asks for the sealed reasoning."""
    config = body.reasoning
    sealed = "reasoning.encrypted_content" in (body.include or ())
    if config is None or (config.effort in (None, "none") and config.summary is None):
        return None
    effort = None if config.effort == "none" else config.effort
    return Reasoning(
        effort=effort,
        summary=config.summary,
        sealed=sealed,
        param="reasoning",
    )


def reasoning_text(generation: Generation) -> str | None:
    """A chat completion's `reasoning_content`: every thought's text (None: there were none)."""
    return "".join(t.text for t in generation.thoughts) if generation.thoughts else None


def thinking_blocks(thoughts: tuple[Thought, ...]) -> list[dict[str, Any]] | None:
    """The thoughts as `thinking_blocks`, sealed to come back (None: there were none)."""
    if not thoughts:
        return None
    return [thinking_block(thought) for thought in thoughts]


def thinking_block(thought: Thought) -> dict[str, Any]:
    """One thought as a thinking block (`redacted_thinking` for Claude's redacted ones)."""
    if thought.redacted:
        return {"type": "redacted_thinking", "data": seal_of(thought)}
    return {"type": "thinking", "thinking": thought.text, "signature": seal_of(thought)}


def thoughts_from_blocks(blocks: list[dict[str, Any]] | None) -> tuple[Thought, ...]:
    """An assistant message's `thinking_blocks`, sent back, as its thoughts."""
    thoughts = []
    for block in blocks or ():
        if block.get("type") == "redacted_thinking":
            thoughts.append(thought_from("", str(block.get("data") or "")))
        elif block.get("type") == "thinking":
            text, seal = str(block.get("thinking") or ""), str(block.get("signature") or "")
            thoughts.append(thought_from(text, seal))
    return tuple(thoughts)


def thought_from_item(item: InputItem) -> Thought:
    """A `reasoning` input item (one of ours, sent back) as the thought it carries."""
    summary = "".join(str(part.get("text") or "") for part in item.summary or ())
    return thought_from(summary, item.encrypted_content or "")


def reasoning_item(item_id: str, thought: Thought, sealed: bool) -> ReasoningItem:
    """A thought as a response's `reasoning` item: a summary, or (Claude's) its content."""
    text = thought.text
    return ReasoningItem(
        id=item_id,
        summary=[SummaryText(text=text)] if thought.summary and text else [],
        content=None if thought.summary else [ReasoningText(text=text)],
        encrypted_content=seal_of(thought) if sealed else None,
    )
