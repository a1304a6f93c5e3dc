"""A scripted OpenAI chat-completions server: what ministack's Bedrock forwards each Converse to.

ministack (`MINISTACK_BEDROCK_PROXY_URL`) turns a Converse request into `POST
/v1/chat/completions` here and the answer back into Converse (a tool call into `toolUse`).
By default the answer echoes the last user message; tests queue `Answer`s to call tools, and
read what arrived in `seen` (the chat-completions body ministack built from our Converse call).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from helpers.loopback import LoopbackServer


@dataclass
class Answer:
    """One scripted reply: text, and tool calls as (name, arguments) pairs."""

    text: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of a chat-completions body."""
    users = [m for m in body["messages"] if m["role"] == "user"]
    return users[-1]["content"] if users else ""


class FakeChat(LoopbackServer):
    """Context manager: the server on a free loopback port; `url`, `seen`, `enqueue`."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def enqueue(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order (then echo again)."""
        with self._lock:
            self._answers.extend(answers)

    def reset(self) -> None:
        """Forget what was seen and queued (the server is shared by a module's tests)."""
        with self._lock:
            self.seen.clear()
            self._answers.clear()

    def _reply(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.seen.append(body)
            answer = self._answers.popleft() if self._answers else None
        if answer is None:
            answer = Answer(text=f"echo: {last_user_text(body)}")
        calls = [
            {
                "id": f"call_{index}_{name}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for index, (name, arguments) in enumerate(answer.calls)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1795608000,
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                payload = json.dumps(fake._reply(body), ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
