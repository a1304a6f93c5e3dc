"""A bedrock-runtime endpoint on loopback answering every Converse call at once, for benchmarks.

`converse` echoes the last user text as JSON; `converse-stream` sends the same reply framed as
Bedrock frames it (helpers/eventstream.py). boto3 reaches it by `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

from helpers.eventstream import text_events
from helpers.loopback import LoopbackServer


def _reply(body: dict) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    texts = [b["text"] for b in (users[-1]["content"] if users else []) if "text" in b]
    return f"echo: {''.join(texts)}"


class FakeBedrock(LoopbackServer):
    """Context manager: `url` serves Converse and ConverseStream for any model."""

    def __init__(self) -> None:
        super().__init__(_Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body are written apart: without this, a keep-alive client's delayed ACK could
    # hold the body back 40 ms, which a real endpoint does not make its callers wait
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        text = _reply(body)
        if self.path.endswith("/converse-stream"):
            payload = b"".join(text_events(text))
            kind = "application/vnd.amazon.eventstream"
        else:
            answer = {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
                "metrics": {"latencyMs": 1},
            }
            payload, kind = json.dumps(answer).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
