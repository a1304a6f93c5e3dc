"""A local HTTP server that speaks OpenAI's Responses API (`POST /v1/responses`), for the real SDK.

It embeds too (`POST /v1/embeddings`): each text's vector is made from its SHA-256, so the same
text always gets the same vector, `dimensions` long (16 unless asked), in base64 or floats as
asked; each input counts a token a word (a token array, its length).

By default it answers every request like OpenAI would, echoing the last user message (asked to
reason, it reasons first: a `reasoning` item, its summary when asked, its encrypted content when
`include` asks; sent back, such an item is recorded in `seen` like any input); offered
function tools (unless `tool_choice` is "none"), it calls the forced one or the first, with
arguments made from the function's schema, and answers a `function_call_output` by echoing the
tool's output. Tests can
queue scripted answers to inject faults: an error status with OpenAI's error body, a delay, a
reset connection, a malformed body. Every request is recorded (headers, JSON body, arrival time).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import socket
import struct
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

CREATED_AT = 1795608000


@dataclass
class Step:
    """One scripted answer. With no `status`, the normal successful response is sent."""

    status: int | None = None
    error_code: str | None = None
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    raw: bytes | None = None
    cut_stream_after: int | None = None  # streamed answers: reset after this many deltas
    stall_after: int | None = None  # streamed answers: pause `stall` seconds after this many
    stall: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)  # replaces fields of the reply's usage


@dataclass
class Seen:
    """A request the server received (header names in lower case)."""

    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    peer: tuple[str, int] = ("", 0)  # the client's address: a new port is a new connection
    target: str = ""  # the request line's target: a path, or an absolute URL through a proxy


def _text(content: str | list[dict[str, Any]]) -> str:
    """A message's text: the string, or its `input_text` parts (images carry none)."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part["type"] == "input_text")


def success_body(request: dict[str, Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Responses API object answering `request`: "echo: <last user message>", or a call.

    `usage` replaces fields of its usage (`input_tokens_details`, ...), as a test scripts it.
    """
    items = request["input"]
    last = next(_text(m["content"]) for m in reversed(items) if m.get("role") == "user")
    text = f"echo: {last}"
    if items[-1].get("type") == "function_call_output":
        text = f"echo: the tool said {items[-1]['output']}"
    prompt = " ".join(
        [request.get("instructions") or ""]
        + [
            _text(m.get("content") or m.get("output") or m.get("arguments") or "")
            for m in items
            if m.get("type") != "reasoning"
        ]
    )
    output = [_function_call(request, last)] if _calls_tool(request) else [_message(text)]
    if "message.output_text.logprobs" in request.get("include", ()) and not _calls_tool(request):
        output[0]["content"][0]["logprobs"] = _logprobs(text, request.get("top_logprobs", 0))
    input_tokens, output_tokens = len(prompt.split()), len(text.split())
    reasoned = 0
    if request.get("reasoning"):
        output.insert(0, _reasoning(request))
        reasoned = REASONING_TOKENS
        output_tokens += reasoned
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": CREATED_AT,
        "status": "completed",
        "model": f"{request['model']}-2024-07-18",
        "output": output,
        "instructions": request.get("instructions"),
        "temperature": request.get("temperature"),
        "max_output_tokens": request.get("max_output_tokens"),
        "top_p": 1.0,
        "tools": request.get("tools", []),
        "tool_choice": request.get("tool_choice", "auto"),
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "text": {"format": {"type": "text"}},
        "incomplete_details": None,
        "error": None,
        "metadata": {},
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoned},
            "total_tokens": input_tokens + output_tokens,
            **(usage or {}),
        },
    }


def embeddings_body(request: dict[str, Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenAI's answer to `POST /v1/embeddings`: a vector per input, made from its text."""
    inputs = request["input"]
    if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    size = request.get("dimensions") or 16
    data = []
    for index, item in enumerate(inputs):
        vector = fake_vector(item if isinstance(item, str) else json.dumps(item), size)
        encoded: Any = list(vector)
        if request.get("encoding_format") == "base64":
            encoded = base64.b64encode(vector.tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(i.split()) if isinstance(i, str) else len(i) for i in inputs)
    counts = {"prompt_tokens": tokens, "total_tokens": tokens, **(usage or {})}
    return {"object": "list", "data": data, "model": request["model"], "usage": counts}


def fake_vector(text: str, size: int) -> array[float]:
    """A unit float32 vector of `size` made from the text's SHA-256 (the same text, the same)."""
    seed = hashlib.sha256(text.encode()).digest()
    raw = [seed[i % len(seed)] - 127.5 + i % 7 for i in range(size)]
    norm = math.sqrt(sum(x * x for x in raw))
    return array("f", (x / norm for x in raw))


REASONING_TOKENS = 7
SUMMARY = "I weighed the question, then answered it."


def _reasoning(request: dict[str, Any]) -> dict[str, Any]:
    """A `reasoning` item: its summary if `reasoning.summary` asks, sealed if `include` asks."""
    item: dict[str, Any] = {"type": "reasoning", "id": "rs_fake", "summary": []}
    if request["reasoning"].get("summary"):
        item["summary"] = [{"type": "summary_text", "text": SUMMARY}]
    if "reasoning.encrypted_content" in request.get("include", ()):
        item["encrypted_content"] = "enc-fake-" + str(len(request["input"]))
    return item


def _message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_fake",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _logprobs(text: str, top: int) -> list[dict[str, Any]]:
    """A made-up logprob per word, with `top` alternatives (the word itself first)."""
    words = [word + " " for word in text.split(" ")]
    words[-1] = words[-1].rstrip()
    entry = [{"token": w, "logprob": -0.25, "bytes": list(w.encode())} for w in words]
    return [{**e, "top_logprobs": [e, {**e, "token": "x", "logprob": -3.0}][:top]} for e in entry]


def _calls_tool(request: dict[str, Any]) -> bool:
    return (
        bool(request.get("tools"))
        and request.get("tool_choice") != "none"
        and request["input"][-1].get("type") != "function_call_output"
    )


def _function_call(request: dict[str, Any], said: str) -> dict[str, Any]:
    """A call of the forced function (or the first), its arguments made from its schema."""
    choice = request.get("tool_choice")
    name = choice["name"] if isinstance(choice, dict) else request["tools"][0]["name"]
    tool = next(t for t in request["tools"] if t["name"] == name)
    arguments = _example(tool.get("parameters") or {"type": "object"}, said)
    return {
        "type": "function_call",
        "id": "fc_fake",
        "call_id": "call_fake1",
        "name": name,
        "arguments": json.dumps(arguments, ensure_ascii=False),
        "status": "completed",
    }


def _example(schema: dict[str, Any], said: str) -> Any:
    """A value valid against a simple JSON schema."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _example(sub, said) for name, sub in schema.get("properties", {}).items()}
    examples = {"string": said, "integer": 42, "number": 1.5, "boolean": True, "array": []}
    return examples.get(kind)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops connections under load (SYN retries)


class FakeOpenAI:
    """Context manager: serves the Responses API on 127.0.0.1 at a free port."""

    def __init__(self) -> None:
        self.script: deque[Step] = deque()
        self.seen: list[Seen] = []
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def enqueue(self, *steps: Step) -> None:
        """Answer the next requests with these steps, in order, then normally again."""
        self.script.extend(steps)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {name.lower(): value for name, value in self.headers.items()}
                seen = Seen(headers, body, time.monotonic(), self.client_address, self.path)
                fake.seen.append(seen)
                step = fake.script.popleft() if fake.script else Step()
                path = urlsplit(self.path).path  # a proxy is sent the whole URL
                if path not in ("/v1/responses", "/v1/embeddings"):
                    step = Step(status=404, error_code="unknown_url", message=f"no {self.path}")
                if path == "/v1/embeddings" and step.status is None and step.raw is None:
                    step = replace(step, raw=json.dumps(embeddings_body(body, step.usage)).encode())
                self._answer(step, body)

            def _answer(self, step: Step, body: dict[str, Any]) -> None:
                time.sleep(step.delay)
                if step.reset:
                    self._reset()
                    return
                if body.get("stream") and step.status is None and step.raw is None:
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self._stream(body, step)  # the client may stop reading early
                elif step.raw is not None:
                    self._send(step.status or 200, step.raw, step.headers)
                elif step.status is None:
                    answer = success_body(body, step.usage)
                    self._send(200, json.dumps(answer).encode(), step.headers)
                else:
                    error = {
                        "message": step.message,
                        "type": "invalid_request_error",
                        "param": None,
                        "code": step.error_code,
                    }
                    payload = json.dumps({"error": error}).encode()
                    self._send(step.status, payload, step.headers)

            def _stream(self, body: dict[str, Any], step: Step) -> None:
                final = success_body(body, step.usage)
                item = final["output"][-1] if body.get("reasoning") else final["output"][0]
                text = item["content"][0]["text"] if item["type"] == "message" else ""
                pieces = [word + " " for word in text.split(" ")] if text else []
                if pieces:
                    pieces[-1] = pieces[-1].rstrip()
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                started = {**final, "status": "in_progress"}
                self._event({"type": "response.created", "response": started})
                if body.get("reasoning"):
                    self._reasoning(final["output"][0])
                for index, piece in enumerate(pieces):
                    if step.cut_stream_after is not None and index >= step.cut_stream_after:
                        self._reset()
                        return
                    if index == step.stall_after:
                        time.sleep(step.stall)
                    delta = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
                    self._event({"type": "response.output_text.delta", **delta, "delta": piece})
                if item["type"] == "function_call":
                    where = {"item_id": item["id"], "output_index": 0}
                    self._event({"type": "response.output_item.added", **where, "item": item})
                    arguments = item["arguments"]
                    for delta in (
                        arguments[: len(arguments) // 2],
                        arguments[len(arguments) // 2 :],
                    ):
                        kind = "response.function_call_arguments.delta"
                        self._event({"type": kind, **where, "delta": delta})
                self._event({"type": "response.completed", "response": final})
                self.close_connection = True

            def _reasoning(self, item: dict[str, Any]) -> None:
                """A reasoning item's events: added, its summary's deltas, done (sealed)."""
                where = {"item_id": item["id"], "output_index": 0}
                opened = {**item, "summary": [], "encrypted_content": None}
                self._event({"type": "response.output_item.added", **where, "item": opened})
                for part in item["summary"]:
                    words = part["text"].split(" ")
                    for index, word in enumerate(words):
                        delta = word if index == len(words) - 1 else word + " "
                        kind = "response.reasoning_summary_text.delta"
                        event = {"type": kind, **where, "summary_index": 0, "delta": delta}
                        self._event(event)
                self._event({"type": "response.output_item.done", **where, "item": item})

            def _reset(self) -> None:
                """Close the connection with a TCP reset, as a crashed upstream would."""
                self.wfile.flush()
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.connection.close()
                self.close_connection = True

            def _event(self, data: dict[str, Any]) -> None:
                frame = f"event: {data['type']}\ndata: {json.dumps(data)}\n\n"
                self.wfile.write(frame.encode())
                self.wfile.flush()

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a timeout test)

        return Handler
