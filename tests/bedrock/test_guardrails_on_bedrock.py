"""BEDROCK_GUARDRAIL on Bedrock's models: Converse's `guardrailConfig`, on the emulator.

ministack evaluates the guardrail (word filters, regexes, PII entities) on our Converse and
ConverseStream calls, reached through a recording proxy so each test reads the call as Bedrock
got it; what Converse's guardrail does not read (tool results, a tool call's arguments, text
documents) the server checks first with ApplyGuardrail. Every API says a block in its own form,
whole and streamed: chat completions (`content_filter`), Responses (`incomplete`), the native
API (`success: false`) and Messages (`refusal`), through the real `openai` and `anthropic` SDKs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

import anthropic
import openai
from helpers.bedrock import CLAUDE, KNOWN, NOVA, bedrock_app, known_sdk
from helpers.fake_chat import Answer
from helpers.guardrails import BLOCKED_INPUT, BLOCKED_OUTPUT
from helpers.live_server import LiveServer


@pytest.fixture
def served(proxy, guardrail) -> Iterator[LiveServer]:
    with LiveServer(bedrock_app(bedrock_guardrail=guardrail)) as live:
        yield live


def test_a_blocked_word_never_reaches_claude_and_chat_completions_says_content_filter(
    served, proxy, chat, guardrail
):
    answer = known_sdk(served).chat.completions.create(
        model=CLAUDE,
        messages=[
            {"role": "system", "content": "짧게 답하세요."},
            {"role": "user", "content": "캥거루 이야기를 해 주세요"},
        ],
    )
    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.choices[0].message.content == BLOCKED_INPUT
    assert chat.seen == []  # the model was never called
    (call,) = proxy.bodies("/converse")
    identifier, version = guardrail.split(":")
    assert call["guardrailConfig"] == {
        "guardrailIdentifier": identifier,
        "guardrailVersion": version,
        "trace": "enabled",
    }
    assert call["system"] == [{"guardContent": {"text": {"text": "짧게 답하세요."}}}]


def test_a_streamed_block_ends_with_content_filter_in_sync_mode(served, proxy, chat):
    chunks = list(
        known_sdk(served).chat.completions.create(
            model=NOVA,
            messages=[{"role": "user", "content": "tell me of the kangaroo"}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == BLOCKED_INPUT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert proxy.bodies("/converse-stream")[0]["guardrailConfig"]["streamProcessingMode"] == "sync"
    assert chat.seen == []


def test_pii_in_a_reply_leaves_masked_and_a_clean_turn_is_untouched(served, chat):
    chat.enqueue(Answer(text="담당자 메일은 kim@example.com 입니다."))
    masked = known_sdk(served).chat.completions.create(
        model=NOVA, messages=[{"role": "user", "content": "담당자 연락처는?"}]
    )
    assert masked.choices[0].message.content == "담당자 메일은 {EMAIL} 입니다."
    assert masked.choices[0].finish_reason == "stop"
    clean = known_sdk(served).chat.completions.create(
        model=NOVA, messages=[{"role": "user", "content": "서울의 날씨는?"}]
    )
    assert clean.choices[0].message.content == "echo: 서울의 날씨는?"


def test_a_blocked_reply_makes_a_response_incomplete_whole_and_streamed(served, chat):
    client = known_sdk(served)
    chat.enqueue(Answer(text="A platypus, of course."))
    whole = client.responses.create(model=NOVA, input="Which animal lays eggs?")
    assert whole.status == "incomplete" and whole.incomplete_details.reason == "content_filter"
    assert whole.output_text == BLOCKED_OUTPUT
    chat.enqueue(Answer(text="A platypus, of course."))
    events = list(client.responses.create(model=NOVA, input="Which animal lays eggs?", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "content_filter"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == BLOCKED_OUTPUT == events[-1].response.output_text


def test_the_native_api_answers_the_message_with_success_false(served, chat):
    for stream in (False, True):
        reply = httpx.post(
            f"{served.url}/api/v1/chat",
            json={"user_message": "캥거루 좋아해요?", "model": NOVA, "stream": stream},
            headers=KNOWN,
            timeout=30,
        )
        assert reply.status_code == 200
        if stream:
            events = [json.loads(x[5:]) for x in reply.text.splitlines() if x.startswith("data:")]
            assert "".join(e["text"] for e in events[:-1]) == BLOCKED_INPUT
            body = events[-1]
        else:
            body = reply.json()
        assert body["response_text"] == BLOCKED_INPUT and body["success"] is False
        assert "content filter" in body["error_message"]
    assert chat.seen == []


def test_the_messages_api_says_refusal_whole_and_streamed(served, chat):
    client = anthropic.Anthropic(base_url=served.url, api_key="client-1", max_retries=0)
    request = {
        "model": CLAUDE,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Draw a kangaroo"}],
    }
    message = client.messages.create(**request)
    assert message.stop_reason == "refusal" and message.content[0].text == BLOCKED_INPUT
    with client.messages.stream(**request) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal" and final.content[0].text == BLOCKED_INPUT
    assert chat.seen == []


def test_what_converse_does_not_read_is_checked_first_with_apply_guardrail(served, proxy, chat):
    """A tool result, a call's arguments, a text document: Converse's guardrail skips them."""
    turns = [
        {"role": "user", "content": "동물원에 뭐가 있지?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "zoo", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a kangaroo and a koala"},
    ]
    tool = {"type": "function", "function": {"name": "zoo", "parameters": {"type": "object"}}}
    blocked = known_sdk(served).chat.completions.create(model=NOVA, messages=turns, tools=[tool])
    assert blocked.choices[0].finish_reason == "content_filter"
    assert blocked.choices[0].message.content == BLOCKED_INPUT
    assert proxy.bodies("/converse") == [] and chat.seen == []
    (checked,) = proxy.bodies("/guardrail/")
    assert checked["source"] == "INPUT"
    assert {"text": {"text": "a kangaroo and a koala"}} in checked["content"]
    assert {"text": {"text": "동물원에 뭐가 있지?"}} not in checked["content"]  # Converse's

    notes = "연락처: kim@example.com".encode()
    file = {
        "filename": "notes.txt",
        "file_data": "data:text/plain;base64," + base64.b64encode(notes).decode(),
    }
    known_sdk(served).chat.completions.create(
        model=NOVA,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "요약"}, {"type": "file", "file": file}],
            }
        ],
    )
    (document,) = [
        b["document"]
        for b in proxy.bodies("/converse")[-1]["messages"][0]["content"]
        if "document" in b
    ]
    assert base64.b64decode(document["source"]["bytes"]).decode() == "연락처: {EMAIL}"


def test_a_tool_call_the_model_makes_is_checked_before_it_leaves(served, chat):
    chat.enqueue(Answer(calls=[("send_mail", {"to": "kim@example.com"})]))
    tool = {"type": "function", "function": {"name": "send_mail", "parameters": {"type": "object"}}}
    answer = known_sdk(served).chat.completions.create(
        model=NOVA, messages=[{"role": "user", "content": "메일을 보내 줘"}], tools=[tool]
    )
    (call,) = answer.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"to": "{EMAIL}"}


def test_a_pdf_is_refused_by_name_while_a_guardrail_is_set(served, proxy):
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4").decode()
    with pytest.raises(openai.BadRequestError) as refused:
        known_sdk(served).chat.completions.create(
            model=CLAUDE,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "읽어 주세요"},
                        {"type": "file", "file": {"filename": "a.pdf", "file_data": pdf}},
                    ],
                }
            ],
        )
    assert refused.value.body["param"] == "messages.0.content.1"
    assert "guardrail" in refused.value.body["message"]
    assert proxy.seen == []


def test_a_tool_description_or_a_file_name_cannot_carry_what_converse_does_not_read(
    served, proxy, chat
):
    """Converse's guardrail skips tool definitions and document names: ApplyGuardrail reads them."""
    tool = {
        "type": "function",
        "function": {"name": "zoo", "description": "All about the kangaroo", "parameters": {}},
    }
    said = [{"role": "user", "content": "동물원 이야기"}]
    for stream in (False, True):
        answer = known_sdk(served).chat.completions.create(
            model=NOVA, messages=said, tools=[tool], stream=stream
        )
        if stream:
            chunks = [c for c in answer if c.choices]
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == BLOCKED_INPUT
            assert chunks[-1].choices[0].finish_reason == "content_filter"
        else:
            assert answer.choices[0].finish_reason == "content_filter"
    notes = "data:text/plain;base64," + base64.b64encode(b"memo").decode()
    file = {"type": "file", "file": {"filename": "kangaroo.txt", "file_data": notes}}
    blocked = known_sdk(served).chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": [{"type": "text", "text": "요약"}, file]}],
    )
    assert blocked.choices[0].message.content == BLOCKED_INPUT
    assert proxy.bodies("/converse") == proxy.bodies("/converse-stream") == []
    assert chat.seen == []


def test_a_text_document_reaches_bedrock_as_the_text_the_guardrail_read(served, proxy):
    """Bytes that are not UTF-8 are read with replacement characters: Bedrock gets that text,
    never bytes it might decode otherwise (UTF-16 hiding a blocked word)."""
    hidden = "a kangaroo".encode("utf-16-le")
    notes = "data:text/plain;base64," + base64.b64encode(b"\xff\xfe" + hidden).decode()
    file = {"type": "file", "file": {"filename": "notes.txt", "file_data": notes}}
    known_sdk(served).chat.completions.create(
        model=NOVA, messages=[{"role": "user", "content": [{"type": "text", "text": "요약"}, file]}]
    )
    (checked,) = [b for b in proxy.bodies("/guardrail/") if b["source"] == "INPUT"]
    read = next(c["text"]["text"] for c in checked["content"] if "\ufffd" in c["text"]["text"])
    (document,) = [
        b["document"]
        for b in proxy.bodies("/converse")[-1]["messages"][0]["content"]
        if "document" in b
    ]
    assert base64.b64decode(document["source"]["bytes"]) == read.encode()


def test_a_streamed_reply_leaves_masked_and_a_clean_one_whole(served, chat):
    client = known_sdk(served)
    chat.enqueue(Answer(text="담당자 메일은 kim@example.com 입니다."))
    chunks = list(
        client.chat.completions.create(
            model=NOVA, messages=[{"role": "user", "content": "담당자 연락처는?"}], stream=True
        )
    )
    masked = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "kim@example.com" not in masked and "{EMAIL}" in masked
    events = list(client.responses.create(model=NOVA, input="서울의 날씨는?", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "echo: 서울의 날씨는?"
