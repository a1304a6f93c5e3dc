"""The README's and the docs' request examples, run against the real local model.

Each `curl` example of `POST /api/v1/chat` is run as written (its `localhost:5601` pointed at the
test server) and must answer 200 with exactly the fields the JSON under it shows, with the same
values wherever a value does not depend on the text generated or the clock. The OpenAI SDK
example is executed with its `base_url` pointed at the test server. The test server runs the
default settings a `make run` serves (anonymous callers allowed), so the examples send no key
and neither does the test.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_MODEL = "SmolLM2-135M-Instruct.Q4_1"
# What the model writes or the clock says: the field must be there, its value may differ.
GENERATED = {"response_text", "output_tokens", "total_tokens_used", "created_at", "response_time"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def code_blocks(page: str) -> list[tuple[str, str]]:
    """Every fenced block of a Markdown page, as (language, text), in order."""
    return [(m[1], m[2]) for m in FENCE.finditer((ROOT / page).read_text(encoding="utf-8"))]


def chat_examples(page: str) -> list[tuple[str, dict]]:
    """Each `curl ... /api/v1/chat` block of a page, with the JSON block shown right after it."""
    blocks = code_blocks(page)
    return [
        (text, json.loads(blocks[i + 1][1]))
        for i, (lang, text) in enumerate(blocks)
        if lang == "bash"
        and "curl" in text
        and "/api/v1/chat" in text
        and "${" not in text
        and i + 1 < len(blocks)
        and blocks[i + 1][0] == "json"
    ]


EXAMPLES = [
    pytest.param(page, command, shown, id=f"{page}-{n}")
    for page in ("README.md", "docs/native-api.md")
    for n, (command, shown) in enumerate(chat_examples(page))
]


def test_the_pages_hold_the_examples_this_file_runs():
    pages = {param.values[0] for param in EXAMPLES}
    assert pages == {"README.md", "docs/native-api.md"}
    assert any("openai" in text for lang, text in code_blocks("README.md") if lang == "python")


@pytest.mark.model
@pytest.mark.parametrize(("page", "command", "shown"), EXAMPLES)
def test_a_curl_example_answers_what_the_page_shows(local_server, page, command, shown):
    address = local_server.url.removeprefix("http://")
    assert "localhost:5601" in command
    command = command.replace("localhost:5601", address).rstrip() + " -w '\\n%{http_code}'"
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, check=True
    )
    body, _, status = done.stdout.rpartition("\n")
    assert status == "200", f"{shlex.quote(command)} answered {status}: {body}"
    answer = json.loads(body)
    assert answer.keys() == shown.keys()
    fixed = {name: value for name, value in shown.items() if name not in GENERATED}
    assert {name: answer[name] for name in fixed} == fixed
    for name in GENERATED:
        assert type(answer[name]) is type(shown[name]), name


@pytest.mark.model
def test_the_openai_sdk_example_runs_as_shown(local_server):
    [example] = [
        text for lang, text in code_blocks("README.md") if lang == "python" and "OpenAI(" in text
    ]
    shown_url = 'base_url="http://127.0.0.1:5601/v1"'
    assert shown_url in example
    code = example.replace(shown_url, f'base_url="{local_server.url}/v1"')
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), namespace)
    reply = namespace["reply"]
    assert reply.object == "chat.completion"
    assert reply.model == LOCAL_MODEL  # the README: without a key the local model answers
    assert reply.choices[0].message.role == "assistant"
    # what it printed (the server's threads write their log lines to the same stdout)
    assert f"{LOCAL_MODEL} {reply.choices[0].message.content}\n" in printed.getvalue()
    namespace["client"].close()
