"""Serve an ASGI app with uvicorn on a free loopback port, in a thread, for real HTTP tests."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn


class LiveServer:
    """Context manager: starts uvicorn on 127.0.0.1:<free port>, stops it on exit."""

    def __init__(self, app, host: str = "127.0.0.1", **config: object) -> None:
        config = uvicorn.Config(
            app, host=host, port=0, log_level="warning", lifespan="on", **config
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
