"""`make run` says, where a newcomer reads it, that callers without a key share one owner."""

import os
import subprocess
import sys
import tempfile
import threading

from helpers.server_process import FUNCTIONS, free_port


def banner(**env: str) -> str:
    """What `python -m llm_server` prints before it serves (on the OpenAI provider: no model)."""
    settings = {
        "PYTHONPATH": str(FUNCTIONS),
        "SERVER_PORT": str(free_port()),
        "LLM_PROVIDER": "openai",
        "LOG_FILE": "",
        "STORE_PATH": os.path.join(tempfile.mkdtemp(), "store.sqlite3"),
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_server"],
        env={**os.environ, **settings},
        cwd=tempfile.mkdtemp(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    # A banner that never says it serves must fail the test, not hang it: stderr ends at the kill.
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "serving the API on" in line:
                break
    finally:
        watchdog.cancel()
        process.kill()
        process.wait(timeout=10)
    return "".join(lines)


def test_the_default_setup_says_anonymous_callers_share_one_owner():
    assert "share the owner 'anonymous'" in banner()


def test_a_server_that_refuses_anonymous_callers_does_not_say_it():
    assert "anonymous" not in banner(ALLOW_ANONYMOUS="false")


def test_the_banner_gives_the_playground_and_the_docs_beside_the_api():
    port = str(free_port())
    text = banner(SERVER_PORT=port, HOST="127.0.0.1")
    address = f"http://127.0.0.1:{port}"
    assert f"serving the API on {address}" in text
    assert f"the playground at {address}/," in text and f"the docs at {address}/docs" in text
