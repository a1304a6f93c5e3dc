"""Start the processes a benchmark compares: LLM Server as `make run` starts it, and others.

Each runs as its own OS process on 127.0.0.1 at a free port, so no benchmark shares an
interpreter (or a GIL) with what it measures.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(
    argv: list[str], ready_url: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.Popen:
    """Start `argv` and wait until `ready_url` answers 200; kill it and raise if it never does."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{argv[0]} did not become ready at {ready_url}")


def llm_server(
    upstream: str, port: int, code: Path | None = None, **overrides: str
) -> subprocess.Popen:
    """LLM Server (`python -m llm_server`) on the OpenAI provider, in front of `upstream`."""
    return local_server(port, code, LLM_PROVIDER="openai", OPENAI_BASE_URL=upstream, **overrides)


def checkout(ref: str) -> Path:
    """The `functions/` of commit `ref`, checked out in a temporary git worktree."""
    where = Path(tempfile.mkdtemp()) / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref],
        check=True,
        capture_output=True,
    )
    return where / "functions"


def remove_checkout(functions: Path) -> None:
    """Remove a worktree made by `checkout`."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(functions.parent)],
        check=False,
        capture_output=True,
    )


def local_server(port: int, code: Path | None = None, **overrides: str) -> subprocess.Popen:
    """LLM Server as `make run` starts it, with cache and sessions off (every request does the
    whole work) and `overrides`; `code` is another checkout's `functions/` to compare with."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code or ROOT / "functions"),
        "SERVER_PORT": str(port),
        "LOG_FILE": "",
        "STORE_PATH": str(Path(tempfile.mkdtemp()) / "bench.sqlite3"),
        "SESSIONS_ENABLED": "false",
        "CACHE_ENABLED": "false",
        **overrides,
    }
    argv = [sys.executable, "-m", "llm_server"]
    return launch(argv, f"http://127.0.0.1:{port}/api/v1/health", env)


def stop(process: subprocess.Popen) -> None:
    """Terminate a started process and reap it."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def code_variants(compare: str | None) -> Iterator[list[tuple[str, Path | None]]]:
    """This tree, after commit `compare` checked out beside it: (name, functions dir or None)."""
    variants: list[tuple[str, Path | None]] = [("this tree", None)]
    if compare:
        variants.insert(0, (compare, checkout(compare)))
    try:
        yield variants
    finally:
        for _, code in variants:
            if code is not None:
                remove_checkout(code)
