"""Every bad input gets a clear 4xx naming the field, with the error body shape; never a 500."""

import json

import pytest

DROP = object()  # marks a field left out of the request
TOO_MANY_HISTORY = ["user: hi"] * 201
TOO_MANY_MEMORY = ["fact"] * 101


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"user_message": DROP}, "user_message", "must not be empty"),
        ({"user_message": ""}, "user_message", "must not be empty"),
        ({"user_message": "  \n\t "}, "user_message", "must not be empty"),
        ({"user_message": 123}, "user_message", "valid string"),
        ({"user_message": None}, "user_message", "valid string"),
        ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"max_tokens": -5}, "max_tokens", "greater than or equal to 1"),
        ({"max_tokens": 4097}, "max_tokens", "between 1 and 4096"),
        ({"max_tokens": "100"}, "max_tokens", "valid integer"),
        ({"max_tokens": 1.5}, "max_tokens", "valid integer"),
        ({"max_tokens": True}, "max_tokens", "valid integer"),
        ({"temperature": -0.1}, "temperature", "greater than or equal to 0"),
        ({"temperature": 2.01}, "temperature", "less than or equal to 2"),
        ({"temperature": "hot"}, "temperature", "valid number"),
        ({"model": ""}, "model", "at least 1 character"),
        ({"model": "m" * 129}, "model", "at most 128 characters"),
        ({"free_mode": "yes"}, "free_mode", "valid boolean"),
        ({"session_id": "s" * 257}, "session_id", "at most 256 characters"),
        ({"conversation_history": "user: hi"}, "conversation_history", "valid array"),
        ({"conversation_history": [1]}, "conversation_history.0", "string or an object"),
        (
            {"conversation_history": [{"role": "system", "content": "x"}]},
            "conversation_history.0",
            '"user" or "assistant"',
        ),
        ({"conversation_history": TOO_MANY_HISTORY}, "conversation_history", "at most 200"),
        ({"memory_context": [{"a": 1}]}, "memory_context.0", "valid string"),
        ({"memory_context": TOO_MANY_MEMORY}, "memory_context", "at most 100"),
        ({"openai_api_key": "  "}, "openai_api_key", "whitespace"),
    ],
)
def test_bad_field_is_a_422_naming_it(client, fields, param, words):
    body = {"user_message": "안녕하세요", "session_id": "bad-input", **fields}
    body = {name: value for name, value in body.items() if value is not DROP}
    response = client.post("/api/v1/chat", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["success"] is False
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["param"] == param
    assert param.split(".")[0] in error["error_message"]
    assert words in error["error_message"]
    if "session_id" not in fields:
        assert error["session_id"] == "bad-input"


@pytest.mark.parametrize(
    "raw",
    ['{"temperature": NaN, "user_message": "x"}', '{"temperature": 1e999, "user_message": "x"}'],
)
def test_nan_and_infinite_numbers_are_rejected(client, raw):
    response = client.post(
        "/api/v1/chat", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "temperature"


def test_a_key_of_the_wrong_shape_is_a_401_that_does_not_echo_it(client):
    key = "not-an-openai-key-1234567890"
    response = client.post("/api/v1/chat", json={"user_message": "hi", "openai_api_key": key})
    assert response.status_code == 401
    assert response.json()["error"]["param"] == "openai_api_key"
    assert key not in response.text


def test_malformed_json_is_a_400(client):
    response = client.post(
        "/api/v1/chat",
        content=b'{"user_message": "hi",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert "not valid JSON" in response.json()["error_message"]


def test_invalid_utf8_is_a_400(client):
    response = client.post(
        "/api/v1/chat",
        content=b'{"user_message": "\xff"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error_message"]


def test_a_body_that_is_not_an_object_is_a_422(client):
    response = client.post("/api/v1/chat", json=["user_message", "hi"])
    assert response.status_code == 422
    assert response.json()["success"] is False


def test_wrong_content_type_is_a_415(client):
    response = client.post(
        "/api/v1/chat",
        content=json.dumps({"user_message": "hi"}),
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error_message"]


def test_a_body_over_the_limit_is_a_413_and_the_server_keeps_serving(client):
    huge = {"user_message": "x" * (1_048_576 + 10)}
    response = client.post("/api/v1/chat", json=huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert client.get("/api/v1/health").status_code == 200


def test_a_chunked_body_over_the_limit_is_a_413(client):
    def chunks():
        yield b'{"user_message": "'
        for _ in range(300):
            yield b"x" * 4096
        yield b'"}'

    response = client.post(
        "/api/v1/chat", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_unknown_route_and_wrong_method_use_the_error_shape(client):
    missing = client.get("/api/v1/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = client.get("/api/v1/chat")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["allow"]
