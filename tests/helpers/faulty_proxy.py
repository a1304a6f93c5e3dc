"""A proxy in front of moto that fails some calls as DynamoDB does under load.

`throttle_every=3` answers every third call with DynamoDB's `ThrottlingException` (HTTP 400,
as AWS answers a hot partition) instead of forwarding it: deterministic, so a test knows how
many calls were refused. `throttle_rate=0.3` refuses calls at random instead, from a seeded
generator (the same calls for the same seed). Every other call goes through to moto unchanged.

`hold("UpdateItem")` keeps that operation's calls waiting at the proxy until `release()`: a
test can then see what a caller got while a write was still under way.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
    "message": "Rate of requests exceeds the allowed throughput.",
}


class FaultyProxy:
    """Context manager: a loopback proxy to `target`, throttling every `throttle_every`th call.

    `delay` (seconds) is added to every call before it is forwarded: a region's round trip,
    for the benches (the calls' waits overlap, as a real service's do).
    """

    def __init__(
        self,
        target: str,
        throttle_every: int = 0,
        delay: float = 0.0,
        throttle_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self._target = urlsplit(target)
        self.throttle_every = throttle_every
        self.throttle_rate = throttle_rate
        self._random = random.Random(seed)
        self.delay = delay
        self.calls = 0
        self.throttled = 0
        self._lock = threading.Lock()
        self._held_operation: str | None = None
        self._gate = threading.Event()
        self.arrived = threading.Event()  # a held call has arrived
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def hold(self, operation: str) -> None:
        """Keep calls of `operation` (e.g. "UpdateItem") waiting until `release()`."""
        self._gate.clear()
        self._held_operation = operation

    def release(self) -> None:
        """Let held calls, and later ones, through."""
        self._held_operation = None
        self._gate.set()

    def _wait_if_held(self, target: str) -> None:
        operation = self._held_operation
        if operation is not None and target.endswith(f".{operation}"):
            self.arrived.set()
            self._gate.wait(timeout=30)

    def _refuse(self) -> bool:
        with self._lock:
            self.calls += 1
            refuse = bool(self.throttle_every) and self.calls % self.throttle_every == 0
            refuse = refuse or self._random.random() < self.throttle_rate
            self.throttled += refuse
            return refuse

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes (40 ms ACKs)

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy._wait_if_held(self.headers.get("X-Amz-Target", ""))
                time.sleep(proxy.delay)
                if proxy._refuse():
                    self._send(400, json.dumps(THROTTLED).encode(), {})
                    return
                upstream = http.client.HTTPConnection(
                    proxy._target.hostname, proxy._target.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request("POST", self.path, body, headers)
                answer = upstream.getresponse()
                payload = answer.read()
                kept = {"x-amzn-requestid", "x-amz-crc32"}
                self._send(
                    answer.status, payload, {k: v for k, v in answer.getheaders() if k in kept}
                )
                upstream.close()

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def __enter__(self) -> FaultyProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
