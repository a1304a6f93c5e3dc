"""A bedrock-runtime ConverseStream endpoint that sends its events when the test says so.

The events are framed as AWS sends them (`application/vnd.amazon.eventstream`: prelude, headers,
payload, CRC32s), so boto3's own parser reads them. The endpoint sends the events before a
`Gate` at once and waits for the test to open it before sending the rest: a test can see the
first delta arrive through our server while the rest has not been sent yet.
"""

from __future__ import annotations

import binascii
import json
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

from helpers.loopback import LoopbackServer


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    )


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    """A Converse stream event (`messageStart`, `contentBlockDelta`, ...)."""
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def exception(kind: str, message: str) -> bytes:
    """An error inside the stream, as Bedrock sends one (`throttlingException`...)."""
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, json.dumps({"message": message}).encode())


def text_events(*pieces: str, stop: str = "end_turn") -> list[bytes]:
    """A whole text answer, one delta per piece, then its stop and usage."""
    return [
        event("messageStart", {"role": "assistant"}),
        *(
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
            for piece in pieces
        ),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": 4, "outputTokens": 2, "totalTokens": 6},
                "metrics": {"latencyMs": 5},
            },
        ),
    ]


@dataclass
class Gate:
    """Where the endpoint waits: after `after` events, until `open` is set."""

    after: int
    open: threading.Event = field(default_factory=threading.Event)


class StreamEndpoint(LoopbackServer):
    """Context manager: `url` answers every converse-stream call with `events`, paced by `gate`."""

    def __init__(self, events: list[bytes], gate: Gate | None = None) -> None:
        self.events = events
        self.gate = gate
        self.calls = 0
        super().__init__(self._handler())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.gate is not None:
            self.gate.open.set()  # a handler still waiting lets go
        super().__exit__(exc_type, exc, tb)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked, as AWS sends it: each event a chunk

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.calls += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for index, message in enumerate(endpoint.events):
                    gate = endpoint.gate
                    if gate is not None and index == gate.after:
                        gate.open.wait(30)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(message), message))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        return Handler
