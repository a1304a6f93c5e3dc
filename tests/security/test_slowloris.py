"""The local server closes connections that never finish their headers, and has room for many."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.local_server import header_timeout_protocol

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (recv sees the end of the stream)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False


def test_a_half_sent_request_is_closed_and_a_whole_one_answered():
    settings = make_settings()
    app = create_app(settings, Services.from_settings(settings))
    with LiveServer(app, http=header_timeout_protocol(0.5)) as server:
        host, port = server.url.removeprefix("http://").split(":")
        idle = socket.create_connection((host, int(port)))
        half = socket.create_connection((host, int(port)))
        half.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # never finished
        assert closed_within(idle, 5) and closed_within(half, 5)  # closed by the server
        health = httpx.get(f"{server.url}/api/v1/health")
        keep_alive = httpx.Client(base_url=server.url)
        first = keep_alive.get("/api/v1/health")
        second = keep_alive.get("/api/v1/health")  # the timer restarts for each request
        keep_alive.close()
    assert health.status_code == first.status_code == second.status_code == 200


def test_the_server_raises_its_open_file_limit():
    script = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from llm_server.local_server import raise_open_file_limit\n"
        "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(FUNCTIONS)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    new, soft, hard = (int(v) for v in out.stdout.split())
    assert new == soft and soft > 256 and (soft == hard or soft == 1 << 20)
