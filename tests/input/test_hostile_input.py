"""Hostile input: each gets a clear 4xx quickly, and the server keeps serving."""

import socket

import pytest


@pytest.fixture(autouse=True)
def still_serving(client):
    yield
    assert client.get("/api/v1/health").status_code == 200


@pytest.mark.parametrize("text", ["x", "x\\ud800"], ids=["plain", "with-a-lone-surrogate"])
def test_deeply_nested_json_is_a_400(client, text):
    """With a surrogate escape the body is decoded once more, for the text check: still a 400."""
    depth = 100_000
    body = f'{{"user_message": "{text}", "memory_context": ' + "[" * depth + "]" * depth + "}"
    response = client.post(
        "/api/v1/chat", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"user_message": "hello\u0000world"}, "user_message"),
        ({"user_message": "hi", "system_message": "\u0000"}, "system_message"),
        ({"user_message": "hi", "memory_context": ["ok", "bad\u0000"]}, "memory_context.1"),
        (
            {"user_message": "hi", "conversation_history": ["user: \u0000"]},
            "conversation_history.0",
        ),
    ],
)
def test_nul_characters_are_rejected_by_field(client, fields, param):
    response = client.post("/api/v1/chat", json=fields)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == param
    assert "NUL" in response.json()["error_message"]


@pytest.mark.parametrize(
    "fields",
    [{"max_tokens": 10**40}, {"max_tokens": -(10**40)}, {"temperature": 10**400}],
)
def test_huge_numbers_are_a_422(client, fields):
    response = client.post("/api/v1/chat", json={"user_message": "hi", **fields})
    assert response.status_code == 422


def test_ten_thousand_history_items_are_refused_before_the_model(client, local_provider):
    before = local_provider.status()["generated_tokens"]
    history = [f"user: message {i}" for i in range(10_000)]
    response = client.post(
        "/api/v1/chat", json={"user_message": "hi", "conversation_history": history}
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "conversation_history"
    assert local_provider.status()["generated_tokens"] == before


def test_a_hostile_request_id_is_not_echoed(client):
    response = client.get("/api/v1/health", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert response.headers["x-request-id"] != "<script>alert(1)</script>"
    assert len(response.headers["x-request-id"]) == 32


def test_header_injection_is_refused_at_the_protocol_level(local_server):
    host, port = local_server.url.removeprefix("http://").split(":")
    raw = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\rSet-Cookie: stolen=1\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(raw)
        reply = connection.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"stolen" not in reply


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_wrong_methods_are_405(client, method):
    response = client.request(method, "/api/v1/chat", json={"user_message": "hi"})
    assert response.status_code == 405
