"""A fast OpenAI stand-in for throughput benchmarks: canned answers, no parsing beyond framing.

    python bench/fast_upstream.py --port 8999 [--delay-ms 0]

Serves `POST /v1/responses` (Responses API) and `POST /v1/chat/completions` (Chat Completions)
on 127.0.0.1 with HTTP/1.1 keep-alive, one asyncio process (uvloop when installed). Every answer
is the same small completed reply with usage, so what a benchmark measures is the proxy in front
of it; a request with `"stream": true` gets it as server-sent events, a word per delta (as the
APIs stream it). `--delay-ms` holds each answer that long, like a model's latency. Prints
"ready" when listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json

TEXT = "Paris is the capital of France."
USAGE_RESPONSES = {
    "input_tokens": 20,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 27,
}
RESPONSES = {
    "id": "resp_bench",
    "object": "response",
    "created_at": 1764000000,
    "status": "completed",
    "model": "gpt-4o-mini-2024-07-18",
    "output": [
        {
            "type": "message",
            "id": "msg_bench",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": TEXT, "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "text": {"format": {"type": "text"}},
    "error": None,
    "incomplete_details": None,
    "usage": USAGE_RESPONSES,
}
CHAT_COMPLETIONS = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1764000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": TEXT},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
}


def _http(status: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def _sse(events: list[dict | str]) -> bytes:
    payload = "".join(
        f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n" for event in events
    ).encode()
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


WORDS = [word + " " for word in TEXT.split(" ")[:-1]] + [TEXT.split(" ")[-1]]
RESPONSES_EVENTS = [
    {"type": "response.created", "response": {**RESPONSES, "status": "in_progress"}},
    *({"type": "response.output_text.delta", "delta": word} for word in WORDS),
    {"type": "response.completed", "response": RESPONSES},
]
CHUNK = {key: CHAT_COMPLETIONS[key] for key in ("id", "created", "model")}
CHAT_COMPLETIONS_EVENTS: list[dict | str] = [
    *(
        {**CHUNK, "object": "chat.completion.chunk", "choices": [choice]}
        for choice in [
            *({"index": 0, "delta": {"content": word}} for word in WORDS),
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        ]
    ),
    "[DONE]",
]
ANSWERS = {
    b"/v1/responses": _http("200 OK", RESPONSES),
    b"/v1/chat/completions": _http("200 OK", CHAT_COMPLETIONS),
}
STREAMED = {
    b"/v1/responses": _sse(list(RESPONSES_EVENTS)),
    b"/v1/chat/completions": _sse(CHAT_COMPLETIONS_EVENTS),
}
NOT_FOUND = _http("404 Not Found", {"error": {"message": "not found", "type": "invalid_request"}})


class Upstream(asyncio.Protocol):
    """One keep-alive connection: frame requests by Content-Length, answer each in order."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = self._buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4 : end + 4 + length]
            self._buffer = self._buffer[end + 4 + length :]
            path = head.split(b" ", 2)[1].split(b"?")[0]
            streamed = b'"stream": true' in body or b'"stream":true' in body
            answer = (STREAMED if streamed else ANSWERS).get(path.removesuffix(b"/"), NOT_FOUND)
            if self._delay:
                asyncio.get_running_loop().call_later(self._delay, self._send, answer)
            else:
                self._send(answer)

    def _send(self, answer: bytes) -> None:
        if self._transport and not self._transport.is_closing():
            self._transport.write(answer)


async def serve(port: int, delay: float) -> None:
    """Listen on 127.0.0.1:`port` until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Upstream(delay), "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
