"""ConverseStream as Bedrock sends it, event by event, to boto3's own client: our SSE relays
each delta as it arrives, and an error inside the stream ends it in-band, typed."""

from __future__ import annotations

import json
import time

import boto3
import httpx

from helpers.bedrock import KNOWN, NOVA
from helpers.eventstream import Gate, StreamEndpoint, event, exception, text_events
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.bedrock.provider import BedrockProvider


def serve(endpoint: StreamEndpoint) -> LiveServer:
    client = boto3.client(
        "bedrock-runtime",
        region_name="ap-northeast-2",
        endpoint_url=endpoint.url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    settings = make_settings(bedrock_models=NOVA, llm_provider="openai")
    services = Services.from_settings(
        settings,
        bedrock=BedrockProvider([NOVA], client=client),
        openai=FailingProvider(AssertionError("not OpenAI")),
    )
    return LiveServer(create_app(settings, services))


def sse_data(lines) -> list[dict]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def test_each_delta_is_relayed_before_bedrock_sends_the_next():
    gate = Gate(after=2)  # messageStart and the first delta go out; the rest waits
    with StreamEndpoint(text_events("안녕", "하세요", "!"), gate) as endpoint:
        with (
            serve(endpoint) as server,
            httpx.stream(
                "POST",
                f"{server.url}/v1/chat/completions",
                json={
                    "model": NOVA,
                    "messages": [{"role": "user", "content": "인사"}],
                    "stream": True,
                },
                headers=KNOWN,
                timeout=30,
            ) as reply,
        ):
            lines = reply.iter_lines()
            seen: list[dict] = []
            while not any(c["choices"] and c["choices"][0]["delta"].get("content") for c in seen):
                seen += sse_data([next(lines)])
            assert seen[-1]["choices"][0]["delta"]["content"] == "안녕"
            assert not gate.open.is_set()  # "안녕" arrived while Bedrock held back the rest
            gate.open.set()
            seen += sse_data(lines)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in seen if c["choices"])
    assert text == "안녕하세요!"
    assert seen[-1]["choices"][0]["finish_reason"] == "stop"


def test_an_error_inside_the_stream_ends_it_in_band_with_its_type():
    events = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "안녕"}}),
        exception("throttlingException", "Too many tokens, please wait"),
    ]
    with StreamEndpoint(events) as endpoint, serve(endpoint) as server:
        with httpx.stream(
            "POST",
            f"{server.url}/v1/responses",
            json={"model": NOVA, "input": "인사", "stream": True},
            headers=KNOWN,
            timeout=30,
        ) as reply:
            assert reply.status_code == 200
            data = sse_data(reply.iter_lines())
    assert [d["delta"] for d in data if d["type"] == "response.output_text.delta"] == ["안녕"]
    assert data[-1]["type"] == "error" and data[-1]["code"] == "upstream_rate_limited"
    assert endpoint.calls == 1  # no retry once the stream has started


def test_a_stream_refused_before_its_first_event_is_an_http_error():
    events = [exception("validationException", "Malformed input request")]
    with StreamEndpoint(events) as endpoint, serve(endpoint) as server:
        reply = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": NOVA, "messages": [{"role": "user", "content": "x"}], "stream": True},
            headers=KNOWN,
            timeout=30,
        )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "upstream_validation_error"


def test_a_dropped_stream_is_charged_the_tokens_it_sent_not_its_deltas():
    """Bedrock's deltas carry many tokens each: 2,500 words in 5 deltas were charged as 5."""
    words = "The quick brown fox jumps over the lazy dog near the river bank today. "
    piece = words * 40  # 560 words, about 720 tokens on any BPE tokenizer
    gate = Gate(after=6)  # messageStart and 5 deltas go out; the rest waits
    events = text_events(*[piece] * 5, "never sent")
    with StreamEndpoint(events, gate) as endpoint, serve(endpoint) as server:
        with httpx.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            json={
                "model": NOVA,
                "messages": [{"role": "user", "content": "a long story"}],
                "stream": True,
                "max_tokens": 4000,
            },
            headers=KNOWN,
            timeout=30,
        ) as reply:
            lines = reply.iter_lines()
            sent = ""
            while sent.count(words) < 5 * 40:
                for chunk in sse_data([next(lines)]):
                    if chunk["choices"]:
                        sent += chunk["choices"][0]["delta"].get("content") or ""
        gate.open.set()  # the client has gone: nothing more reaches it
        rows: list = []
        for _ in range(200):  # the server notices the client leave and charges the turn
            rows = httpx.get(f"{server.url}/api/v1/usage", headers=KNOWN).json()["by_model"]
            if rows:
                break
            time.sleep(0.05)
    (row,) = rows
    assert row["requests"] == 1
    assert 3_000 <= row["output_tokens"] <= 4_500  # 14,000 ASCII characters: 3,500 at 4 a token
    assert row["cost_usd"] > 0


def test_korean_sent_before_a_drop_is_counted_a_token_a_syllable():
    from llm_server.core.text import text_tokens as sent_tokens

    assert sent_tokens(["안녕하세요", "!"]) == 6
    assert sent_tokens(["Hello, world"]) == 3
    assert sent_tokens(["a", "b", "c"]) == 3  # never fewer than a token a piece
