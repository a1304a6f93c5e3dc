"""BEDROCK_GUARDRAIL on the models Bedrock does not run: ApplyGuardrail before and after them.

The guardrail is ministack's (word filters, regexes, PII entities), reached through a recording
proxy; OpenAI is the Responses API stand-in (what reached it is in `fake.seen`), the local model
the real one. A blocked input never reaches a model, masked PII reaches it masked, a reply is
checked before it leaves (a stream in chunks), and a guardrail that cannot answer fails closed.
What intervened is logged (never the text), counted, and its units charged to the operator.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import httpx
import pytest

import anthropic
import openai
from helpers.fake_openai import FakeOpenAI
from helpers.fakes import FailingProvider
from helpers.guardrails import BLOCKED_INPUT, BLOCKED_OUTPUT, create_guardrail, policy
from helpers.live_server import LiveServer
from helpers.logs import capture_logs
from helpers.settings import make_settings
from llm_server.app import Services, create_app

CALLER_KEY = "sk-guarded-" + "g" * 40
KOREAN = "서울에서 가 볼 만한 곳을 알려 주세요"


def guarded_app(guardrail: str, **overrides):
    overrides.setdefault("bedrock_region", "ap-northeast-2")
    settings = make_settings(bedrock_guardrail=guardrail, **overrides)
    return settings


@pytest.fixture
def on_openai(proxy, guardrail) -> Iterator[tuple[LiveServer, FakeOpenAI]]:
    with FakeOpenAI() as fake:
        settings = guarded_app(
            guardrail, llm_provider="openai", openai_base_url=fake.url, guardrail_stream_chars=100
        )
        local = FailingProvider(AssertionError("no local model here"), name="local")
        app = create_app(settings, Services.from_settings(settings, local=local))
        with LiveServer(app) as server:
            yield server, fake


def openai_sdk(server: LiveServer) -> openai.OpenAI:
    """A known client (`client-1`) calling on its own OpenAI key."""
    return openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key=CALLER_KEY,
        default_headers={"X-Api-Key": "client-1"},
        max_retries=0,
    )


def test_a_blocked_input_never_reaches_openai_in_any_api_whole_or_streamed(on_openai):
    server, fake = on_openai
    client = openai_sdk(server)
    said = [{"role": "user", "content": "캥거루 사진을 보여 주세요"}]
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=said)
    assert (whole.choices[0].finish_reason, whole.choices[0].message.content) == (
        "content_filter",
        BLOCKED_INPUT,
    )
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=said, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == BLOCKED_INPUT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    response = client.responses.create(model="gpt-4o-mini", input="a kangaroo, please")
    assert response.status == "incomplete" and response.output_text == BLOCKED_INPUT
    assert response.incomplete_details.reason == "content_filter"
    events = list(client.responses.create(model="gpt-4o-mini", input="a kangaroo", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.output_text == BLOCKED_INPUT
    assert fake.seen == []


def test_pii_reaches_openai_masked_and_the_guardrail_is_charged_and_logged(
    on_openai, proxy, capsys
):
    server, fake = on_openai
    with capture_logs() as logs:
        answer = openai_sdk(server).chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Reply to kim@example.com's question."},
                {"role": "user", "content": f"{KOREAN} (답장은 lee@example.kr 로)"},
            ],
        )
    sent = fake.seen[0].body
    assert sent["instructions"] == "Reply to {EMAIL}'s question."
    assert sent["input"][-1]["content"] == f"{KOREAN} (답장은 {{EMAIL}} 로)"
    assert answer.choices[0].message.content == f"echo: {KOREAN} (답장은 {{EMAIL}} 로)"
    line = next(r for r in logs.records() if "guardrail_findings" in r)
    assert line["guardrail_findings"] == ["input:pii:EMAIL"] and line["guardrail_blocked"] == ""
    assert "example" not in logs.text  # what it found is named, never quoted
    blobs = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    counted = [b for b in blobs if "GuardrailInterventions" in b]
    assert {(b.get("source"), b.get("guardrail_policy")) for b in counted} == {
        (None, None),  # the total
        ("input", "pii"),  # by where and which policy
    }
    usage = httpx.get(f"{server.url}/api/v1/usage", headers={"X-Api-Key": "client-1"}).json()
    row = next(r for r in usage["by_model"] if r["model"] == "bedrock-guardrail")
    assert row["api_key_source"] == "server" and row["requests"] == 1
    assert row["cost_usd"] == pytest.approx(0.0003)  # 3 PII units (2 texts in, 1 out), $0.10/1000
    assert usage["cost_usd"] == row["cost_usd"]  # the operator pays the guardrail


def test_a_stream_is_checked_in_chunks_and_a_block_stops_it_with_the_message(on_openai):
    server, fake = on_openai
    words = " ".join(f"단어{n}" for n in range(40))
    said = f"{words} platypus {words}"
    events = list(openai_sdk(server).responses.create(model="gpt-4o-mini", input=said, stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "content_filter"
    assert deltas[-1] == BLOCKED_OUTPUT
    sent = "".join(deltas[:-1])
    assert len(sent) >= 100 and f"echo: {said}".startswith(sent)  # checked chunks went out
    assert "platypus" not in sent
    assert events[-1].response.output_text == sent + BLOCKED_OUTPUT
    assert len(fake.seen) == 1


def test_a_clean_stream_arrives_whole_in_korean(on_openai):
    server, _ = on_openai
    said = " ".join([KOREAN] * 12)
    chunks = list(
        openai_sdk(server).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": said}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"echo: {said}"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_a_failing_guardrail_fails_closed_and_nothing_reaches_the_model(on_openai, proxy):
    server, fake = on_openai
    proxy.fail("/guardrail/", 503, "ServiceUnavailableException")
    for stream in (False, True):
        reply = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": KOREAN}],
                "stream": stream,
            },
            headers={"Authorization": f"Bearer {CALLER_KEY}"},
            timeout=60,
        )
        assert reply.status_code == 503
        assert reply.json()["error"]["code"] == "guardrail_unavailable"
        assert int(reply.headers["Retry-After"]) >= 1
    assert fake.seen == []
    assert len(proxy.bodies("/guardrail/")) == 6  # each tried three times


@pytest.fixture
def on_local(proxy, bedrock_upstream, local_provider) -> Iterator[LiveServer]:
    masked = create_guardrail(bedrock_upstream[0], **policy(masked_output="[A-Za-z]"))
    settings = guarded_app(masked, llm_provider="local", guardrail_stream_chars=100)
    app = create_app(settings, Services.from_settings(settings, local=local_provider))
    with LiveServer(app) as server:
        yield server


def test_the_local_model_is_never_run_on_a_blocked_input(on_local):
    client = openai.OpenAI(base_url=f"{on_local.url}/v1", api_key="EMPTY", max_retries=0)
    said = [{"role": "user", "content": "캥거루 이야기를 해 줘"}]
    whole = client.chat.completions.create(model="local", messages=said, max_tokens=20)
    assert whole.choices[0].finish_reason == "content_filter"
    assert whole.choices[0].message.content == BLOCKED_INPUT
    assert whole.usage.prompt_tokens == 0 and whole.usage.completion_tokens == 0
    messages = anthropic.Anthropic(base_url=on_local.url, api_key="client-1", max_retries=0)
    with messages.messages.stream(model="local", max_tokens=20, messages=said) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal" and final.content[0].text == BLOCKED_INPUT
    assert final.usage.input_tokens == 0


def test_the_local_models_reply_leaves_masked_whole_and_streamed(on_local):
    client = openai.OpenAI(base_url=f"{on_local.url}/v1", api_key="EMPTY", max_retries=0)
    request = {
        "model": "local",
        "messages": [{"role": "user", "content": "Write a long sentence about the sea."}],
        "max_tokens": 60,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**request).choices[0].message.content
    chunks = list(client.chat.completions.create(**request, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    for text in (whole, streamed):
        assert "{masked}" in text
        assert not re.search("[A-Za-z]", text.replace("{masked}", ""))  # every letter masked
    assert streamed == whole


def test_native_chat_on_the_local_model_says_it_was_filtered(on_local):
    reply = httpx.post(
        f"{on_local.url}/api/v1/chat",
        json={"user_message": "my SSN is 123-45-6789", "session_id": "s1"},
        headers={"X-Api-Key": "client-1"},
        timeout=60,
    )
    body = reply.json()
    assert reply.status_code == 200 and body["success"] is False
    assert body["response_text"] == BLOCKED_INPUT and "content filter" in body["error_message"]
    kept = httpx.get(f"{on_local.url}/api/v1/sessions/s1", headers={"X-Api-Key": "client-1"})
    assert json.dumps(kept.json()).find("123-45") == -1  # a filtered turn is not kept


def test_what_the_request_declares_and_the_documents_names_are_checked_too(on_openai):
    """The model reads tool descriptions, a JSON answer's schema and file names: so does the
    guardrail (Converse's reads none of them)."""
    server, fake = on_openai
    client = openai_sdk(server)
    said = [{"role": "user", "content": "동물 이야기를 해 주세요"}]
    tool = {
        "type": "function",
        "function": {
            "name": "facts",
            "description": "Facts about the kangaroo",
            "parameters": {"type": "object"},
        },
    }
    blocked = client.chat.completions.create(model="gpt-4o-mini", messages=said, tools=[tool])
    assert blocked.choices[0].finish_reason == "content_filter"
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "animal",
            "schema": {"type": "object", "properties": {"kangaroo": {"type": "string"}}},
        },
    }
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=said, response_format=schema
    )
    assert answer.choices[0].message.content == BLOCKED_INPUT
    assert fake.seen == []

    mailing = {**tool["function"], "description": "Mail kim@example.com the facts"}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=said, tools=[{"type": "function", "function": mailing}]
        )
    assert refused.value.body["code"] == "guardrail_masked_definition"
    assert refused.value.body["param"] == "tools"
    assert fake.seen == []

    notes = "data:text/plain;base64," + base64.b64encode("목요일 세 시".encode()).decode()
    file = {"type": "file", "file": {"filename": "lee@example.kr 메모.txt", "file_data": notes}}
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": [{"type": "text", "text": "요약"}, file]}],
    )
    sent = json.dumps(fake.seen[-1].body["input"], ensure_ascii=False)
    assert "{EMAIL}" in sent and "example" not in sent and "목요일 세 시" in sent


def test_a_streamed_turn_reaches_openai_masked_and_leaves_masked(on_openai):
    server, fake = on_openai
    events = list(
        openai_sdk(server).responses.create(
            model="gpt-4o-mini", input="메일은 kim@example.com 으로", stream=True
        )
    )
    assert fake.seen[0].body["input"][-1]["content"] == "메일은 {EMAIL} 으로"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "echo: 메일은 {EMAIL} 으로"


def test_a_clean_turn_on_the_local_model_is_untouched_whole_and_streamed(
    proxy, guardrail, local_provider, local_server
):
    settings = guarded_app(guardrail, llm_provider="local", guardrail_stream_chars=100)
    app = create_app(settings, Services.from_settings(settings, local=local_provider))
    request = {
        "model": "local",
        "messages": [{"role": "user", "content": "Name three colours."}],
        "max_tokens": 40,
        "temperature": 0,
    }
    plain = openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)
    unguarded = plain.chat.completions.create(**request).choices[0].message.content
    with LiveServer(app) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="EMPTY", max_retries=0)
        whole = client.chat.completions.create(**request).choices[0]
        chunks = list(client.chat.completions.create(**request, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert whole.message.content == streamed == unguarded
    assert whole.finish_reason != "content_filter"
    checked = [b for b in proxy.bodies("/guardrail/") if b["source"] == "OUTPUT"]
    assert len(checked) >= 2  # the reply was read, whole and streamed
