"""The local server as users run it (`python -m llm_server`), in a process of its own.

A test whose request could crash the process (a segfault in llama.cpp) runs against this: the
crash is then that test's failure, seen as the process gone, not the end of the whole suite.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """Context manager: `python -m llm_server` on a free port, with `env` added; killed on exit."""

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {
            **os.environ,
            "PYTHONPATH": str(FUNCTIONS),
            "SERVER_PORT": str(self.port),
            "LLM_PROVIDER": "local",
            "OPENAI_API_KEY": "",
            "LOG_FILE": "",
            "LOG_LEVEL": "WARNING",
            "STORE_PATH": str(Path(tempfile.mkdtemp()) / "store.sqlite3"),
            **env,
        }
        self.store_path = self._env["STORE_PATH"]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llm_server"],
            env=self._env,
            cwd=tempfile.mkdtemp(),  # no developer .env
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """Send SIGTERM, as a process manager stops a server."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.alive:
            self.process.kill()
            self.process.wait(timeout=10)
