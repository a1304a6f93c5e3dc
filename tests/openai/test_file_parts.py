"""File parts: passed on to OpenAI as they came; on the local model, text read, PDFs refused.

Chat completions' `file` part and the Responses API's `input_file`, inline as data URLs, through
the real `openai` SDK. The OpenAI path runs against the Responses API stand-in (what reached it is
in `fake.seen`); the local path against the real local model.
"""

from __future__ import annotations

import base64

import pytest

import openai
from helpers.openai_app import openai_app_server

CALLER_KEY = "sk-files-" + "f" * 40
PDF = b"%PDF-1.4\n%%EOF"
NOTES = "회의록: 다음 회의는 목요일 오후 세 시입니다. 장소는 3층 회의실입니다.".encode()


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def pdf_part() -> dict:
    return {
        "type": "file",
        "file": {"filename": "계약서.pdf", "file_data": data_url("application/pdf", PDF)},
    }


def test_a_pdf_reaches_openai_as_an_input_file_from_both_apis(fake):
    with openai_app_server(fake) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=CALLER_KEY, max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": [{"type": "text", "text": "요약"}, pdf_part()]}],
        )
        client.responses.create(
            model="gpt-4o-mini",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "요약"},
                        {
                            "type": "input_file",
                            "filename": "계약서.pdf",
                            "file_data": data_url("application/pdf", PDF),
                        },
                    ],
                }
            ],
        )
    expected = {
        "type": "input_file",
        "filename": "계약서.pdf",
        "file_data": data_url("application/pdf", PDF),
    }
    assert [seen.body["input"][0]["content"][1] for seen in fake.seen] == [expected, expected]


def test_a_file_id_is_refused_by_name_before_openai_is_called(fake):
    with openai_app_server(fake) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=CALLER_KEY, max_retries=0)
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-x"}}]}
                ],
            )
    assert refused.value.body["param"] == "messages.0.content.0.file_id"
    assert "files API" in refused.value.body["message"]
    assert fake.seen == []


@pytest.fixture
def local(local_server):
    return openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)


def test_the_local_model_reads_a_text_file_inlined(local):
    question = {"type": "text", "text": "다음 회의는 언제인가요?"}
    notes = {
        "type": "file",
        "file": {"filename": "notes.txt", "file_data": data_url("text/plain", NOTES)},
    }
    without = local.chat.completions.create(
        model="local",
        max_tokens=1,
        temperature=0,
        messages=[{"role": "user", "content": [question]}],
    )
    with_notes = local.chat.completions.create(
        model="local",
        max_tokens=1,
        temperature=0,
        messages=[{"role": "user", "content": [question, notes]}],
    )
    assert with_notes.usage.prompt_tokens > without.usage.prompt_tokens + 20


def test_the_local_model_refuses_a_pdf_naming_the_part(local):
    with pytest.raises(openai.BadRequestError) as refused:
        local.chat.completions.create(
            model="local",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "읽어 줘"}, pdf_part()]}
            ],
        )
    assert refused.value.body["param"] == "messages.0.content.1"
    assert "reads text only" in refused.value.body["message"]


def test_a_document_too_long_for_the_context_is_refused_before_it_is_tokenized(
    local, local_provider, monkeypatch
):
    """Tokenizing holds about 60 times the text's bytes: 600 KB sent would be 36 MB held.
    More bytes than the context's tokens of the longest token cannot fit, so are never read."""
    llama = local_provider._ensure_loaded()

    def tokenized(*args, **kwargs):
        raise AssertionError("a prompt that cannot fit was tokenized")

    monkeypatch.setattr(llama, "tokenize", tokenized)
    long = {
        "type": "file",
        "file": {"filename": "long.txt", "file_data": data_url("text/plain", b"word " * 120_000)},
    }
    for ask in (
        lambda: local.chat.completions.create(
            model="local", messages=[{"role": "user", "content": [long]}]
        ),
        lambda: local.responses.input_tokens.count(
            model="local",
            input=[
                {
                    "role": "user",
                    "content": [{"type": "input_file", **long["file"]}],
                }
            ],
        ),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            ask()
        assert refused.value.body["code"] == "context_length_exceeded"
        assert "600,0" in refused.value.body["message"]
