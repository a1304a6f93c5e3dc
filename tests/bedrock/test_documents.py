"""Files as models read them: OpenAI's `file` and `input_file` parts reaching Bedrock as documents.

The real `openai` SDK against our server; our server calls ministack's bedrock-runtime through
a recording proxy, so each test reads the Converse request exactly as it reached the emulator
(botocore writes a document's bytes as base64). Refusals are 400s naming the part.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

import openai
from helpers.bedrock import CLAUDE, KNOWN, NOVA, bedrock_app, known_sdk
from helpers.live_server import LiveServer
from helpers.recording_proxy import RecordingProxy

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF"
CSV = "도시,기온\n서울,3\n부산,9\n".encode()


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def input_file(name: str, media_type: str, data: bytes) -> dict:
    """A Responses `input_file` part, inline."""
    return {"type": "input_file", "filename": name, "file_data": data_url(media_type, data)}


@pytest.fixture
def served(proxy) -> Iterator[LiveServer]:
    # a 4.5 MB PDF reserves about 2.4M tokens of free mode's day: these tests are Bedrock's
    with LiveServer(bedrock_app(max_body_bytes=12_000_000, free_mode_tokens_per_day=10**8)) as live:
        yield live


def sent_documents(proxy: RecordingProxy) -> list[dict]:
    """The document blocks of the last Converse call that reached the emulator."""
    body = proxy.bodies("/converse")[-1]
    return [b["document"] for m in body["messages"] for b in m["content"] if "document" in b]


def test_a_pdf_file_part_reaches_claude_as_a_converse_document(served, proxy, chat):
    answer = known_sdk(served).chat.completions.create(
        model=CLAUDE,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "이 보고서를 요약해 주세요."},
                    {
                        "type": "file",
                        "file": {
                            "filename": "report 2026.pdf",
                            "file_data": data_url("application/pdf", PDF),
                        },
                    },
                ],
            }
        ],
    )
    assert answer.choices[0].message.content == "echo: 이 보고서를 요약해 주세요."
    assert sent_documents(proxy) == [
        {
            "format": "pdf",
            "name": "report 2026 pdf",
            "source": {"bytes": base64.b64encode(PDF).decode()},
        }
    ]


def test_an_input_file_reaches_nova_streamed_its_type_from_its_name(served, proxy, chat):
    events = list(
        known_sdk(served).responses.create(
            model=NOVA,
            stream=True,
            input=[
                {
                    "role": "user",
                    "content": [
                        input_file("기온.csv", "application/octet-stream", CSV),
                        {"type": "input_text", "text": "가장 따뜻한 도시는?"},
                    ],
                }
            ],
        )
    )
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "echo: 가장 따뜻한 도시는?"
    (document,) = sent_documents(proxy)
    assert document["format"] == "csv" and base64.b64decode(document["source"]["bytes"]) == CSV


@pytest.mark.parametrize(
    ("part", "named"),
    [
        ({"type": "file", "file": {"file_id": "file-abc123"}}, "messages.0.content.1.file_id"),
        (
            {
                "type": "file",
                "file": {"filename": "a.zip", "file_data": data_url("application/zip", b"PK")},
            },
            "messages.0.content.1",
        ),
        (
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "JVBERi0="}},
            "messages.0.content.1.file_data",
        ),
        (
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,%%%"}},
            "messages.0.content.1.file_data",
        ),
    ],
)
def test_a_file_bedrock_cannot_read_is_a_400_naming_the_part(served, proxy, part, named):
    with pytest.raises(openai.BadRequestError) as refused:
        known_sdk(served).chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": [{"type": "text", "text": "읽어 주세요"}, part]}],
        )
    assert refused.value.status_code == 400
    assert refused.value.body["param"] == named and refused.value.body["message"].startswith(named)
    assert proxy.bodies("/converse") == []  # nothing reached Bedrock


def test_an_input_file_by_url_or_id_is_refused_by_name(served, proxy):
    for field, value in (("file_url", "https://example.com/a.pdf"), ("file_id", "file-abc")):
        reply = httpx.post(
            f"{served.url}/v1/responses",
            json={
                "model": NOVA,
                "input": [{"role": "user", "content": [{"type": "input_file", field: value}]}],
            },
            headers=KNOWN,
            timeout=30,
        )
        assert reply.status_code == 400
        assert reply.json()["error"]["param"] == f"input.0.content.0.{field}"
    assert proxy.bodies("/converse") == []


def test_bedrocks_limits_five_documents_and_four_and_a_half_megabytes(served, proxy):
    pdf = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": data_url("application/pdf", PDF)},
    }
    six = [{"role": "user", "content": [{"type": "text", "text": "모두 읽어 주세요"}] + [pdf] * 6}]
    with pytest.raises(openai.BadRequestError) as too_many:
        known_sdk(served).chat.completions.create(model=CLAUDE, messages=six)
    assert too_many.value.body["param"] == "messages.0.content.6"
    large = {
        "type": "file",
        "file": {
            "filename": "big.pdf",
            "file_data": data_url("application/pdf", PDF + b"0" * 4_718_593),
        },
    }
    with pytest.raises(openai.BadRequestError) as too_large:
        known_sdk(served).chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": [{"type": "text", "text": "x"}, large]}],
        )
    assert too_large.value.body["param"] == "messages.0.content.1"
    assert "4.5 MB" in too_large.value.body["message"]
    assert proxy.bodies("/converse") == []


def test_a_documents_bytes_count_in_the_stored_chains_bounds(proxy, chat):
    with LiveServer(bedrock_app(session_max_bytes=8_000)) as server:
        client = known_sdk(server)
        text = "가" * 2_000  # 6,000 bytes of UTF-8
        first = client.responses.create(
            model=NOVA,
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "기억해 주세요"},
                        input_file("memo.txt", "text/plain", text.encode()),
                    ],
                }
            ],
        )
        assert sent_documents(proxy)[0]["format"] == "txt"
        second = client.responses.create(
            model=NOVA, input="또 하나: " + "나" * 1_000, previous_response_id=first.id
        )
        client.responses.create(
            model=NOVA, input="무엇을 기억하나요?", previous_response_id=second.id
        )
    body = proxy.bodies("/converse")[-1]
    said = json.dumps(body["messages"], ensure_ascii=False)
    assert "또 하나" in said and "기억해 주세요" not in said  # the document's turn left the chain
    assert sent_documents(proxy) == []
