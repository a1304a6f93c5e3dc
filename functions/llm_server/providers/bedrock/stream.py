"""ConverseStream's events as our deltas, block by block, and the whole `Reply` they make.

A text block's deltas go out as text; a reasoning block's as thought deltas, its signature (or
redacted content) gathered and sent when the block stops, with the whole thought; a tool use's
input is gathered and becomes a call when its block stops, except the answer tool's (a JSON
answer), whose input goes out as text as it comes.
"""

from __future__ import annotations

import base64
from typing import Any

from llm_server.providers.bedrock.content import SOURCE
from llm_server.providers.bedrock.wire import Reply
from llm_server.values import Thought, ThoughtDelta


class StreamReader:
    """Reads one stream's events into deltas and `reply`."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self._tool: tuple[str, str] | None = None
        self._input: list[str] = []
        self._thought: list[str] | None = None  # a reasoning block's text, while it is open
        self._seal = ""
        self._redacted = b""

    def read(self, event: dict[str, Any]) -> list[str | ThoughtDelta]:
        """The deltas in one event (what else it says goes into the reply)."""
        reply = self.reply
        if "contentBlockStart" in event:
            use = event["contentBlockStart"].get("start", {}).get("toolUse")
            if use:
                self._tool, self._input = (use["toolUseId"], use["name"]), []
        elif "contentBlockDelta" in event:
            return self._delta(event["contentBlockDelta"].get("delta", {}))
        elif "contentBlockStop" in event:
            return self._stop()
        elif "messageStop" in event:
            stop = event["messageStop"]
            reply.stopped(stop.get("stopReason"), stop.get("additionalModelResponseFields"))
        elif "metadata" in event:
            reply.usage = event["metadata"].get("usage") or {}
        return []

    def _delta(self, delta: dict[str, Any]) -> list[str | ThoughtDelta]:
        if "text" in delta:
            self.reply.text.append(delta["text"])
            return [delta["text"]]
        if "reasoningContent" in delta:
            return self._reasoning(delta["reasoningContent"])
        piece = (delta.get("toolUse") or {}).get("input")
        if not piece or self._tool is None:
            return []
        self._input.append(piece)
        if self._tool[1] == self.reply.answer_tool:
            self.reply.text.append(piece)
            return [piece]
        return []

    def _reasoning(self, content: dict[str, Any]) -> list[str | ThoughtDelta]:
        if self._thought is None:
            self._thought, self._seal, self._redacted = [], "", b""
        self._seal += content.get("signature") or ""
        self._redacted += content.get("redactedContent") or b""
        text = content.get("text") or ""
        if not text:
            return []
        self._thought.append(text)
        return [ThoughtDelta(text)]

    def _stop(self) -> list[str | ThoughtDelta]:
        if self._thought is not None:
            redacted = base64.b64encode(self._redacted).decode() if self._redacted else ""
            thought = Thought(SOURCE, "".join(self._thought), self._seal, redacted)
            self.reply.thoughts.append(thought)
            self._thought = None
            return [ThoughtDelta(ended=thought)]
        if self._tool is not None:
            call_id, name = self._tool
            if name != self.reply.answer_tool:  # the answer's text went out as deltas already
                self.reply.add_call(call_id, name, "".join(self._input))
            self._tool = None
        return []
