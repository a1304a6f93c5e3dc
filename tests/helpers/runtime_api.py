"""A stand-in for Lambda's Extensions API on loopback: what an internal extension talks to.

Lambda's side of the handshake, driven by the test: `invoke(request_id)` sends the registered
extension its INVOKE event (as Lambda does when it hands the runtime an event), and
`finished(request_id)` waits until the extension asks for its next event, which is when Lambda
would let the environment freeze. Point `AWS_LAMBDA_RUNTIME_API` at `address` before the
handler's module is imported (registration happens during init).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

from helpers.loopback import LoopbackServer

PREFIX = "/2020-01-01/extension"


class ExtensionsAPI(LoopbackServer):
    """Context manager: the register and next-event endpoints, and the events they deliver."""

    def __init__(self) -> None:
        self.registered: list[dict] = []  # name, events and identifier of each registration
        self.refuse_registration = False  # as Lambda does once init is over
        self.chunked = False  # events sent in chunks, as HTTP/1.1 lets a server send them
        self._events: queue.Queue[dict] = queue.Queue()
        self._state = threading.Condition()
        self._delivered: str | None = None  # the last INVOKE the extension took
        self._waiting = False  # the extension is in `next`, done with what it was given
        super().__init__(self._handler())
        self.address = self.url.removeprefix("http://")

    def invoke(self, request_id: str) -> None:
        """Send the extension an INVOKE event for `request_id`."""
        with self._state:
            self._waiting = False
        deadline_ms = int((time.time() + 29) * 1000)
        event = {"eventType": "INVOKE", "requestId": request_id, "deadlineMs": deadline_ms}
        self._events.put(event)

    def finished(self, request_id: str, timeout: float = 10.0) -> bool:
        """Wait until the extension, having taken `request_id`, asks for its next event."""
        with self._state:
            return self._state.wait_for(
                lambda: self._delivered == request_id and self._waiting, timeout
            )

    def is_holding(self, request_id: str) -> bool:
        """Whether the extension has taken `request_id` and not yet asked for the next event."""
        with self._state:
            return self._delivered == request_id and not self._waiting

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # as Lambda's own API: no Nagle (headers and body go out as separate writes, and the
            # body would otherwise wait out the client's delayed ACK, 40 ms)
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.path != f"{PREFIX}/register":
                    self._send(404, {})
                    return
                if api.refuse_registration:
                    self._send(403, {"errorType": "Extension.RegistrationForbidden"})
                    return
                identifier = str(uuid.uuid4())
                api.registered.append(
                    {
                        "name": self.headers.get("Lambda-Extension-Name"),
                        "events": body.get("events"),
                        "identifier": identifier,
                    }
                )
                self._send(200, {}, {"Lambda-Extension-Identifier": identifier})

            def do_GET(self) -> None:
                known = {entry["identifier"] for entry in api.registered}
                if self.path != f"{PREFIX}/event/next":
                    self._send(404, {})
                    return
                if self.headers.get("Lambda-Extension-Identifier") not in known:
                    self._send(403, {"errorType": "Extension.InvalidExtensionIdentifier"})
                    return
                with api._state:
                    api._waiting = True
                    api._state.notify_all()
                event = api._events.get()
                with api._state:
                    api._delivered, api._waiting = event["requestId"], False
                    api._state.notify_all()
                self._send(200, event)

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                if api.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = len(data) // 2
                    for chunk in (data[:half], data[half:], b""):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    return
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
