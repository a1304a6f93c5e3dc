"""`make run` says, where a newcomer reads it, that callers without a key share one owner."""

import os
import subprocess
import sys
import tempfile

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
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "serving on" in line:
                break
    finally:
        process.kill()
        process.wait(timeout=10)
    return "".join(lines)


def test_the_default_setup_says_anonymous_callers_share_one_owner():
    assert "share the owner 'anonymous'" in banner()


def test_a_server_that_refuses_anonymous_callers_does_not_say_it():
    assert "anonymous" not in banner(ALLOW_ANONYMOUS="false")
