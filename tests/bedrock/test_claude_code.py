"""Claude Code itself (npm `@anthropic-ai/claude-code`, pinned in tests/clients) through LLM Server
against a Bedrock model on the emulator, with nothing set but the base URL and the tenant's key.

Its own model names reach Bedrock through MODEL_ALIASES. It runs offline (no telemetry, no
non-essential traffic), in a scratch home and working directory; the scripted model answers in
text, so Claude Code runs none of its tools on this machine.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers.bedrock import CLAUDE, KNOWN, NOVA, bedrock_app
from helpers.fake_chat import Answer
from helpers.live_server import LiveServer

CLAUDE_CODE = Path(__file__).resolve().parents[1] / "clients" / "node_modules" / ".bin" / "claude"
# Claude Code's own names: its default model and its small fast ones
ALIASES = ",".join(
    f"{name}={CLAUDE}"
    for name in ("claude-opus-5-5", "claude-haiku-5-5", "claude-haiku-4-5-20251001")
)


def claude(server: LiveServer, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not CLAUDE_CODE.exists():
        pytest.fail("Claude Code is not installed: `make test` installs the JavaScript clients")
    (home / "work").mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": KNOWN["X-Api-Key"],
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
    }
    return subprocess.run(
        [str(CLAUDE_CODE), *args],
        cwd=home / "work",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def gateway(chat):
    with LiveServer(bedrock_app(model_aliases=ALIASES)) as live:
        yield live


def test_claude_code_prints_the_bedrock_models_answer(gateway, chat, tmp_path):
    chat.enqueue(Answer(text="Hi! I am answering from Bedrock."))
    done = claude(gateway, tmp_path, "-p", "say hi")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Hi! I am answering from Bedrock." in done.stdout
    sent = chat.seen[-1]  # what ministack forwarded of our Converse call
    assert len(sent["tools"]) >= 10  # Claude Code's tools reached Bedrock
    assert any(tool["function"]["name"] == "Bash" for tool in sent["tools"])
    assert sent["messages"][0]["role"] == "system"
    assert "say hi" in str(sent["messages"][-1]["content"])


def test_claude_code_on_a_bedrock_model_it_is_told_by_id(chat, tmp_path):
    """`--model` (or `ANTHROPIC_MODEL`) naming a Bedrock id: no alias needed."""
    chat.enqueue(Answer(text="노바가 대답합니다."))
    with LiveServer(bedrock_app()) as server:
        done = claude(server, tmp_path, "-p", "--model", NOVA, "안녕")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "노바가 대답합니다." in done.stdout


def test_claude_code_on_a_model_that_thinks(chat, tmp_path):
    """Claude Code always asks for adaptive thinking: on Claude 4.5 it becomes a budget."""
    sonnet = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    chat.enqueue(Answer(text="Sonnet thought, then answered."))
    app = bedrock_app(bedrock_models=f"{NOVA},{sonnet}", model_aliases=f"claude-opus-5-5={sonnet}")
    with LiveServer(app) as server:
        done = claude(server, tmp_path, "-p", "say hi")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Sonnet thought, then answered." in done.stdout
