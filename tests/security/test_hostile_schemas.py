"""Schemas that crashed or pinned the local server: each one request, each now a 400 or an answer.

They run against `python -m llm_server` in a process of its own: a segfault in llama.cpp is
then this test's failure (the process gone), not the end of the suite. After every case the
server must still be alive; at the end the model worker must be free for an ordinary chat.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers.server_process import ServerProcess

CRASHING_PATTERN = "^a**$"  # llama.cpp's parser refused it: a NULL sampler, then a segfault
# Runs of optional items in a row, the family that held the worker (13 s for 4 tokens at 100).
PINNING = [
    f"^({inner}){{{count}}}$"
    for inner in ("a?", "a*", "(a|b)?", "[ab]?", "a?b?")
    for count in (17, 100, 999)
] + ["^((a?){4}){5}$", "^(a|b?){20}$", "^" + "a?" * 40 + "$", "^(a?){8}(b?){9}$"]
CHEAP = ["^(a?){8}$", "^a{0,100}$", "^(a*)*$", "^(\\d{3}-)?\\d{3}-\\d{4}$"]
BROKEN_SCHEMAS: dict[str, dict[str, Any]] = {
    "empty enum": {"enum": []},
    "const with a NUL": {"const": '"\\\u0000'},
    "double quantifier": {"type": "string", "pattern": CRASHING_PATTERN},
    "quantifier first": {"type": "string", "pattern": "^*a$"},
    "a lone optional": {"type": "string", "pattern": "^?$"},
    "huge enum": {"enum": [f"value-{i}" for i in range(30_000)]},
    "huge count": {"type": "array", "items": {"type": "string"}, "minItems": 100_000},
    "deeply nested pattern": {"type": "string", "pattern": f"^{'(' * 3000}a{')' * 3000}$"},
    "deeply nested schema": json.loads('{"items": ' * 600 + "{}" + "}" * 600),
}
ANY_ANSWER = {
    "const with a control character": {"const": "a\u0001b"},
    "deep anyOf": {"anyOf": [{"anyOf": [{"anyOf": [{"type": "string"}] * 3}] * 3}] * 3},
    "nested arrays": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as process:
        yield process


def chat_with_schema(server: ServerProcess, schema: dict[str, Any]) -> httpx.Response:
    body = {
        "model": "local",
        "messages": [{"role": "user", "content": "숫자를 하나 말해 주세요"}],
        "max_tokens": 4,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120)


def string_pattern(pattern: str) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern}


@pytest.mark.parametrize("pattern", PINNING)
def test_a_run_of_optional_items_is_refused_at_once(server, pattern):
    response = chat_with_schema(server, string_pattern(pattern))
    assert server.alive
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "response_format"
    assert "optional items in a row" in error["message"]


@pytest.mark.parametrize("name", BROKEN_SCHEMAS)
def test_a_schema_llama_cpp_cannot_follow_is_a_400_not_a_crash(server, name):
    response = chat_with_schema(server, BROKEN_SCHEMAS[name])
    assert server.alive, "the server died"
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "response_format"


@pytest.mark.parametrize("name", ANY_ANSWER)
def test_an_odd_schema_is_answered_or_refused_never_a_500(server, name):
    response = chat_with_schema(server, ANY_ANSWER[name])
    assert server.alive
    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize("pattern", CHEAP)
def test_patterns_whose_cost_stays_small_are_followed(server, pattern):
    assert chat_with_schema(server, string_pattern(pattern)).status_code == 200


def test_digit_and_word_shorthands_are_followed_not_a_crash(server):
    """`^\\d+$` was one of the four one-request segfaults; it now means what it says."""
    for pattern, text in (("^\\d+$", r"[0-9]*"), ("^[a-z]\\w*$", r"[a-z][0-9A-Za-z_]*")):
        body = {
            "model": "local",
            "messages": [{"role": "user", "content": "Give me a value"}],
            "max_tokens": 8,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "v", "schema": string_pattern(pattern)},
            },
        }
        response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120)
        assert response.status_code == 200, response.text
        content = response.json()["choices"][0]["message"]["content"]
        assert re.fullmatch(f'"{text}"?\\s*', content), content


def test_the_native_api_refuses_an_empty_enum_by_its_field(server):
    body = {
        "user_message": "hi",
        "max_tokens": 4,
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"enum": []}}},
    }
    response = httpx.post(f"{server.url}/api/v1/chat", json=body, timeout=120)
    assert server.alive
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format"


def test_the_responses_api_names_text_format(server):
    body = {
        "model": "local",
        "input": "hi",
        "max_output_tokens": 4,
        "text": {"format": {"type": "json_schema", "name": "x", "schema": string_pattern("^a**$")}},
    }
    response = httpx.post(f"{server.url}/v1/responses", json=body, timeout=120)
    assert server.alive
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "text.format"


def test_a_tool_parameter_pattern_is_followed_on_the_responses_api(server):
    tool = {
        "type": "function",
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"id": string_pattern("^[a-z]\\w*$")},
            "required": ["id"],
        },
    }
    body = {"model": "local", "input": "look up abc", "tools": [tool], "tool_choice": "required"}
    body["temperature"] = 0
    response = httpx.post(f"{server.url}/v1/responses", json=body, timeout=120)
    assert server.alive
    assert response.status_code == 200, response.text
    call = next(item for item in response.json()["output"] if item["type"] == "function_call")
    assert re.fullmatch(r"[a-z][0-9A-Za-z_]*", json.loads(call["arguments"])["id"])


def test_after_every_hostile_schema_the_worker_is_free(server):
    for schema in (string_pattern("^(a?){999}$"), {"enum": []}, string_pattern(CRASHING_PATTERN)):
        assert chat_with_schema(server, schema).status_code == 400
    body = {"model": "local", "messages": [{"role": "user", "content": "안녕"}], "max_tokens": 8}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]
