"""What the local server (`python -m llm_server`) needs to survive idle or half-sent connections.

uvicorn closes idle keep-alive connections but waits forever for the headers of a request that
was started and never finished, and every such connection holds a file descriptor: about a
thousand of them once exhausted the default open-file limit and `/api/v1/health` stopped
answering. So the server raises its soft open-file limit to the hard one at start, and closes a
connection whose request headers have not all arrived `HEADER_READ_TIMEOUT_SECONDS` after its
first byte (or after it opened).

It parses HTTP with httptools (llhttp, in C) where it is installed, as the local layer installs
it, and with uvicorn's pure-Python h11 otherwise: the parser was 8 % of a request's time under
load (bench/README.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

OPEN_FILES_CAP = 1 << 20


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (where there is one); return the new one."""
    try:
        import resource
    except ImportError:  # not POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = OPEN_FILES_CAP if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_CAP)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def http_protocol() -> type[Any]:
    """Uvicorn's httptools protocol if httptools is installed, else its h11 one."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def header_timeout_protocol(seconds: float) -> type[Any]:
    """Uvicorn's HTTP protocol, closing connections that take over `seconds` to send headers."""

    class HeaderTimeoutProtocol(http_protocol()):  # type: ignore[misc]
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._watch_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            super().connection_lost(exc)

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _watch_headers(self) -> None:
            """Start the clock when a request is awaited; stop it once its headers are in."""
            if not self._waiting_for_headers():
                self._stop_timer()
            elif self._header_timer is None:
                self._header_timer = self.loop.call_later(seconds, self._headers_late)

        def _headers_late(self) -> None:
            self._header_timer = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.close()

        def _stop_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

    return HeaderTimeoutProtocol
