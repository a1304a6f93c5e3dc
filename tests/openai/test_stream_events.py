"""A Responses API stream read without the SDK: its events in any framing the format allows.

The upstream's bytes are scripted (the fake sends them as given); the stream is read through
the whole server over HTTP, on each HTTP client library (aiohttp locally, httpx2 on Lambda).
"""

import json

import httpx
import pytest

from helpers.fake_openai import Step, success_body
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.openai import events as stream_events
from llm_server.providers.openai.events import EventDecoder

KEY = "sk-events-" + "e" * 40
EVENT_STREAM = {"content-type": "text/event-stream"}


@pytest.fixture(params=["aiohttp", "httpx"])
def server(fake, request):
    settings = make_settings(
        openai_base_url=fake.url, openai_max_retries=0, openai_http_client=request.param
    )
    local = FailingProvider(AssertionError("no local model here"), name="local")
    with LiveServer(create_app(settings, Services.from_settings(settings, local=local))) as live:
        yield live


def stream_chat(server) -> tuple[int, list[tuple[str, dict]]]:
    """The status and the (event, data) pairs of a streamed `POST /api/v1/chat`."""
    body = {"user_message": "안녕하세요", "openai_api_key": KEY, "stream": True}
    response = httpx.post(f"{server.url}/api/v1/chat", json=body, timeout=30)
    if response.headers["content-type"].startswith("application/json"):
        return response.status_code, [("body", response.json())]
    events = []
    for frame in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return response.status_code, events


def completed(text: str) -> bytes:
    """A `response.completed` event whose response says `text`."""
    response = success_body({"model": "gpt-4o-mini", "input": [{"role": "user", "content": "x"}]})
    response["output"][0]["content"][0]["text"] = text
    return sse({"type": "response.completed", "response": response})


def sse(data: dict, newline: str = "\n") -> bytes:
    frame = f"event: {data['type']}{newline}data: {json.dumps(data, ensure_ascii=False)}"
    return (frame + newline + newline).encode()


def delta(text: str, newline: str = "\n") -> bytes:
    return sse({"type": "response.output_text.delta", "delta": text}, newline)


def test_events_are_read_in_every_framing_the_format_allows(fake, server):
    """CRLF line ends, comments, a `data:` field without its space, data over two lines."""
    two_lines = b'data: {"type": "response.output_text.delta",\ndata: "delta": "\xec\x84\xb8"}\n\n'
    fake.enqueue(
        Step(
            raw=b": keep-alive comment\n\n"
            + delta("안녕", "\r\n")
            + 'data:{"type": "response.output_text.delta", "delta": "하"}\n\n'.encode()
            + two_lines
            + completed("안녕하세"),
            headers=EVENT_STREAM,
        )
    )
    status, events = stream_chat(server)
    assert status == 200
    assert [data["text"] for kind, data in events if kind == "delta"] == ["안녕", "하", "세"]
    assert events[-1][0] == "done" and events[-1][1]["response_text"] == "안녕하세"


def test_a_final_event_larger_than_any_read_buffer_arrives_whole(fake, server):
    """The last event carries the whole response: a long reply's is hundreds of kilobytes."""
    text = "가" * 200_000  # 600 KB of UTF-8 in one line
    fake.enqueue(Step(raw=delta("가") + completed(text), headers=EVENT_STREAM))
    status, events = stream_chat(server)
    assert status == 200 and events[-1][0] == "done"
    assert events[-1][1]["response_text"] == text


def test_an_error_event_mid_stream_ends_it_with_an_in_band_error_without_the_key(fake, server):
    failure = {"type": "error", "message": f"upstream broke (key {KEY[:12]}...)", "code": None}
    fake.enqueue(Step(raw=delta("안녕") + sse(failure), headers=EVENT_STREAM))
    status, events = stream_chat(server)
    assert status == 200  # the stream had started
    assert [kind for kind, _ in events] == ["delta", "error"]
    error = events[-1][1]["error_message"]
    assert "failed mid-stream: upstream broke" in error and KEY[:12] not in error


def test_an_event_past_the_size_bound_is_refused_before_it_grows(fake, server, monkeypatch):
    """An upstream that never ends its event is not buffered without bound: a 502."""
    monkeypatch.setattr(stream_events, "MAX_EVENT_BYTES", 64 * 1024)
    endless = b"data: " + b"x" * (256 * 1024)
    fake.enqueue(Step(raw=endless, headers=EVENT_STREAM))
    status, events = stream_chat(server)
    assert status == 502
    assert events[0][1]["error"]["code"] == "upstream_malformed"


def test_events_split_anywhere_are_read_whole():
    """However the bytes arrive (here: one at a time), the same events come out."""
    stream = delta("안녕", "\r\n") + b": comment\n\n" + delta("하세요")
    decoder = EventDecoder()
    one_at_a_time = [event for byte in stream for event in decoder.feed(bytes([byte]))]
    assert one_at_a_time == EventDecoder().feed(stream)
    assert [json.loads(data)["delta"] for data in one_at_a_time] == ["안녕", "하세요"]
