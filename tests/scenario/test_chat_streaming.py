"""`/api/v1/chat` with `"stream": true`, read by a plain SSE client, on the local model."""

import json

import pytest

pytestmark = pytest.mark.model


def read_events(response):
    """Parse Server-Sent Events the way a browser's EventSource does."""
    events, kind, data = [], "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((kind, json.loads("\n".join(data))))
            kind, data = "message", []
    return events


def test_deltas_then_the_full_chat_response(client):
    request = {
        "session_id": "stream-1",
        "user_message": "한국의 수도는 어디인가요?",
        "max_tokens": 24,
        "temperature": 0,
        "stream": True,
    }
    with client.stream("POST", "/api/v1/chat", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = read_events(response)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"delta"} and len(kinds) > 2
    done = events[-1][1]
    assert done["success"] is True and done["session_id"] == "stream-1"
    assert (
        "".join(data["text"] for kind, data in events if kind == "delta") == done["response_text"]
    )
    assert done["output_tokens"] > 0 and done["api_key_source"] == "none"
    whole = client.post("/api/v1/chat", json={**request, "stream": False, "session_id": ""}).json()
    assert whole["response_text"] == done["response_text"]
    assert (whole["input_tokens"], whole["output_tokens"]) == (
        done["input_tokens"],
        done["output_tokens"],
    )


def test_errors_before_streaming_are_plain_json(client):
    response = client.post("/api/v1/chat", json={"user_message": " ", "stream": True})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["param"] == "user_message"
