"""A loopback proxy in front of an AWS emulator: it records what arrives and can fail some of it.

What boto3 sent is in `seen` (each call's path and JSON body, bytes as the base64 botocore
wrote), exactly as it reached the emulator; `fail("/guardrail/", 503, ...)` answers the calls
whose path holds that text with an error of AWS's shape instead of forwarding them (a service
that is down). Everything else goes through unchanged, answer headers and body included.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from helpers.loopback import LoopbackServer


class RecordingProxy(LoopbackServer):
    """Context manager: `url` forwards to `target`; `seen` lists (path, body) as they came."""

    def __init__(self, target: str) -> None:
        self._target = urlsplit(target)
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._failing: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def fail(self, path_part: str, status: int, code: str) -> None:
        """Answer calls whose path holds `path_part` with `status` and AWS's error `code`."""
        self._failing[path_part] = (status, code)

    def bodies(self, path_part: str) -> list[dict[str, Any]]:
        """The bodies of the calls whose path holds `path_part`, oldest first."""
        with self._lock:
            return [body for path, body in self.seen if path_part in path]

    def _failure(self, path: str) -> tuple[int, str] | None:
        return next((f for part, f in self._failing.items() if part in path), None)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        upstream = http.client.HTTPConnection(self._target.hostname, self._target.port, timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        upstream.request("POST", handler.path, body, headers)
        answer = upstream.getresponse()
        payload = answer.read()
        handler.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        upstream.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    proxy.seen.append((self.path, json.loads(body or b"{}")))
                failure = proxy._failure(self.path)
                if failure is None:
                    proxy._forward(self, body)
                    return
                status, code = failure
                payload = json.dumps({"message": "scripted failure", "__type": code}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-amzn-ErrorType", code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
