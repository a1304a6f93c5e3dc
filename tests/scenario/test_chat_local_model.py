"""Real HTTP round trips through the app to the real local model (llama.cpp, SmolLM2-135M)."""

from datetime import UTC, datetime

import httpx
import pytest

from helpers.logs import capture_logs

pytestmark = pytest.mark.model

MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"


def chat(client, **fields):
    response = client.post("/api/v1/chat", json=fields)
    return response, response.json()


def test_english_chat_returns_the_full_contract(client):
    asked = datetime.now(UTC)
    response, body = chat(
        client, session_id="s-en", user_message="What is the capital of France?", max_tokens=24
    )
    assert response.status_code == 200, body
    assert body["success"] is True and body["error_message"] is None
    assert body["session_id"] == "s-en"
    assert body["response_text"].strip()
    assert body["model"] == MODEL_NAME
    assert body["api_key_source"] == "none"
    assert body["output_format"] == "text"
    assert body["temperature"] == 0.7
    assert body["instructions"] == ""
    assert 0 < body["output_tokens"] <= 24
    assert body["input_tokens"] > 0
    assert body["total_tokens_used"] == body["input_tokens"] + body["output_tokens"]
    assert body["response_time"] > 0
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert created.tzinfo is not None and created.utcoffset() == UTC.utcoffset(None)
    assert asked <= created <= datetime.now(UTC)  # made while this request was served
    assert response.headers["x-request-id"]


def test_korean_chat_with_every_prompt_section(client):
    response, body = chat(
        client,
        session_id="세션-1",
        system_message="당신은 도움이 되는 AI 어시스턴트입니다.",
        role="여행 가이드",
        memory_context=["사용자는 서울에 산다"],
        instructions="한 문장으로 답하세요.",
        conversation_history=["user: 안녕하세요", "assistant: 안녕하세요! 무엇을 도와드릴까요?"],
        user_message="서울에서 가볼 만한 곳을 추천해 주세요.",
        max_tokens=32,
        temperature=0.2,
    )
    assert response.status_code == 200, body
    assert body["session_id"] == "세션-1"
    assert body["response_text"].strip()
    assert body["instructions"] == "한 문장으로 답하세요."
    assert body["temperature"] == 0.2
    assert 0 < body["output_tokens"] <= 32


def test_sections_and_history_reach_the_model(client):
    """Counted by the model's own tokenizer: more prompt in, more input tokens."""
    question = {"user_message": "Say hi.", "max_tokens": 4, "temperature": 0}
    _, bare = chat(client, **question)
    _, fuller = chat(
        client,
        memory_context=["The user's name is Jisoo."],
        conversation_history=["Hello!", "Hi, how can I help?"],
        **question,
    )
    assert fuller["input_tokens"] > bare["input_tokens"] + 10


def test_temperature_zero_is_repeatable_and_max_tokens_caps_output(client):
    request = {
        "user_message": "Count from one to twenty in words.",
        "max_tokens": 6,
        "temperature": 0,
    }
    _, first = chat(client, **request)
    _, second = chat(client, **request)
    assert first["response_text"] == second["response_text"]
    assert first["output_tokens"] == 6


def test_one_json_log_line_per_request(client):
    with capture_logs() as logs:
        response, body = chat(client, user_message="Hi", max_tokens=4, session_id="log-me")
    assert response.status_code == 200
    lines = [r for r in logs.records() if r["message"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["status"] == 200
    assert line["path"] == "/api/v1/chat"
    assert line["provider"] == "local"
    assert line["model"] == MODEL_NAME
    assert line["input_tokens"] == body["input_tokens"]
    assert line["output_tokens"] == body["output_tokens"]
    assert line["latency_ms"] > 0
    assert line["service"] == "llm-server"


def test_system_info_reports_the_runtime_and_the_loaded_model(client):
    chat(client, user_message="Hi", max_tokens=2)
    response = client.get("/api/v1/system/info")
    assert response.status_code == 200
    info = response.json()
    for field in ("python_version", "platform", "cpu_count", "app_version"):
        assert info[field]
    assert 0 < info["memory_available_mb"] <= info["memory_total_mb"]
    assert info["process_rss_mb"] > 10
    assert info["uptime_seconds"] > 0
    assert info["llm_provider"] == "auto"
    local = info["providers"]["local"]
    assert local["model"] == MODEL_NAME and local["loaded"] is True


def test_health_and_docs(client):
    assert client.get("/api/v1/health").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    chat_request = schema["components"]["schemas"]["ChatRequest"]
    assert chat_request["examples"][0]["user_message"]
    chat = schema["paths"]["/api/v1/chat"]["post"]  # its route skips FastAPI's handler, not docs
    body = chat["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/ChatRequest") and chat["requestBody"]["required"] is True
    answer = chat["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/ChatResponse") and "422" in chat["responses"]


@pytest.mark.parametrize("max_tokens", [8, 16])
def test_a_korean_reply_cut_at_max_tokens_counts_exactly_max_tokens(client, max_tokens):
    """Korean cut mid-character re-tokenizes longer than it was generated; usage must not."""
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "local",
            "messages": [{"role": "user", "content": "서울에서 가볼 만한 곳을 추천해 주세요."}],
            "max_tokens": max_tokens,
            "temperature": 0,
        },
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == max_tokens


PROMPT = {"user_message": "Name three colours of the sea.", "max_tokens": 4}


@pytest.fixture
def prompt_tokens_read(client, local_provider, monkeypatch):
    """How many prompt tokens the model reads for `PROMPT` from an HTTP client (and headers).

    The first `eval` of a request is its prompt, what the cache did not hold; then a token at
    a time.
    """
    loading = client.post("/api/v1/chat", json=PROMPT, headers={"X-Api-Key": "client-2"})
    assert loading.status_code == 200  # the model is loaded, its cache nobody else's
    evaluated: list[int] = []
    llama = local_provider._llama
    real_eval = llama.eval
    monkeypatch.setattr(
        llama, "eval", lambda tokens: (evaluated.append(len(tokens)), real_eval(tokens))[1]
    )

    def read(http, **headers: str) -> int:
        evaluated.clear()
        reply = http.post("/api/v1/chat", json=PROMPT, headers=headers)
        assert reply.status_code == 200, reply.text
        return evaluated[0]

    return read


def test_only_the_tenant_whose_prompt_is_cached_resumes_from_it(client, prompt_tokens_read):
    """llama.cpp's prompt cache serves its tenant; another's same prompt is read from scratch.

    Else how soon a guessed prompt is answered would tell whether another tenant just sent it.
    """
    first = prompt_tokens_read(client, **{"X-Api-Key": "client-1"})
    again = prompt_tokens_read(client, **{"X-Api-Key": "client-1"})
    other = prompt_tokens_read(client, **{"X-Api-Key": "client-2"})
    assert again < first  # the same tenant resumes from its cached prompt
    assert other == first  # another tenant's request reads all of it


def test_an_anonymous_caller_resumes_only_from_its_own_address(
    client, local_server, prompt_tokens_read
):
    """Anonymous callers (the default local setup) share one owner, not one prompt cache."""
    first = prompt_tokens_read(client)
    again = prompt_tokens_read(client)
    elsewhere = httpx.HTTPTransport(local_address="127.0.0.2")  # another machine's address
    with httpx.Client(base_url=local_server.url, transport=elsewhere, timeout=120) as other:
        from_elsewhere = prompt_tokens_read(other)
    assert again < first  # a conversation's next turn reads only what is new
    assert from_elsewhere == first
