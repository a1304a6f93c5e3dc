"""No input gives a 500; when a bug does, the 500 is still traceable; nothing says too much."""

import json
import os
import socket

import httpx
import pytest
from invoke import LAMBDA_ENV, LambdaContext
from mangum import Mangum

from helpers.fake_openai import Step
from helpers.fakes import FailingProvider
from helpers.lambda_events import EVENTS
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from helpers.tenants import CALLER_KEY, post_chat
from llm_server.app import Services, create_app

LONE_SURROGATE = "\\ud800"  # as JSON writes it: valid JSON, not valid Unicode


def serve(fake=None, openai=None, **overrides):
    if fake is not None:
        overrides.setdefault("openai_base_url", fake.url)
    settings = make_settings(llm_provider="openai", openai_max_retries=0, **overrides)
    local = FailingProvider(AssertionError("no local model here"), name="local")
    service = Services.from_settings(settings, local=local, openai=openai)
    return LiveServer(create_app(settings, service))


def post_raw(server, path, raw_json, headers=None):
    headers = {"content-type": "application/json", **(headers or {})}
    return httpx.post(f"{server.url}{path}", content=raw_json.encode(), headers=headers)


@pytest.mark.parametrize("field", ["user_message", "instructions", "session_id", "model"])
def test_a_lone_surrogate_is_a_422_naming_the_field(fake, field):
    body = {"user_message": "hi", "openai_api_key": CALLER_KEY}
    raw = json.dumps(body)[:-1] + f', "{field}": "a{LONE_SURROGATE}b"}}'
    with serve(fake) as server:
        response = post_raw(server, "/api/v1/chat", raw)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == field
    assert fake.seen == []


@pytest.mark.parametrize(
    ("path", "raw", "param"),
    [
        (
            "/v1/chat/completions",
            '{"model": "m", "messages": [{"role": "user", "content": "a\\ud800"}]}',
            "messages.0.content",
        ),
        ("/v1/responses", '{"model": "m", "input": "a\\ud800"}', "input"),
        (
            "/v1/chat/completions",
            '{"model": "m", "messages": [{"role": "user", "content": "a\\u0000b"}]}',
            "messages.0.content",
        ),
    ],
)
def test_openai_routes_refuse_text_that_cannot_travel(fake, path, raw, param):
    with serve(fake) as server:
        response = post_raw(server, path, raw, {"Authorization": f"Bearer {CALLER_KEY}"})
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith(param)
    assert fake.seen == []


def test_openai_routes_apply_max_history_items(fake):
    items = [{"role": "user", "content": "x"}] * 20_000  # 600 KB: within MAX_BODY_BYTES
    with serve(fake) as server:
        auth = {"Authorization": f"Bearer {CALLER_KEY}"}
        completions = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": "m", "messages": items},
            headers=auth,
            timeout=30,
        )
        responses = httpx.post(
            f"{server.url}/v1/responses", json={"model": "m", "input": items}, headers=auth
        )
    assert completions.status_code == 400 and completions.json()["error"]["param"] == "messages"
    assert responses.status_code == 400 and responses.json()["error"]["param"] == "input"
    assert "at most 200" in responses.json()["error"]["message"]
    assert fake.seen == []


def test_a_non_ascii_caller_key_is_a_401_before_any_call(fake):
    korean_key = "sk-한국어" + "k" * 30
    with serve(fake) as server:
        native = post_chat(server, openai_api_key=korean_key)
        compatible = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {korean_key}".encode()},
        )
    assert native.status_code == 401 and native.json()["error"]["code"] == "invalid_api_key"
    assert compatible.status_code == 401
    assert compatible.json()["error"]["code"] == "invalid_api_key"
    assert fake.seen == []


@pytest.mark.parametrize("value", ["inf", "1e999", "nan", "-5"])
def test_an_absurd_upstream_retry_after_is_not_a_500(fake, value):
    fake.enqueue(Step(status=429, error_code="rate_limit_exceeded", headers={"Retry-After": value}))
    with serve(fake) as server:
        response = post_chat(server, openai_api_key=CALLER_KEY)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 86_400  # said even when upstream's wasn't


def test_a_500_still_carries_its_request_id():
    broken = FailingProvider(RuntimeError("a bug"))
    with serve(openai=broken) as server:
        response = post_chat(server, openai_api_key=CALLER_KEY, headers={"X-Request-Id": "trace-7"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "trace-7"


def on_lambda(monkeypatch):
    """The app as the Lambda handler runs it, and the sample chat event to invoke it with."""
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    settings = make_settings()
    app = create_app(settings, Services.from_settings(settings))
    return app, json.loads((EVENTS / "chat.json").read_text(encoding="utf-8"))


def test_a_request_id_must_match_the_safe_pattern_in_full(monkeypatch):
    app, event = on_lambda(monkeypatch)
    event.update(httpMethod="GET", path="/api/v1/health", resource="/api/v1/health", body=None)
    del event["requestContext"]["requestId"]
    event["headers"]["X-Request-Id"] = "abc\n"
    response = Mangum(app, lifespan="off")(event, LambdaContext())
    echoed = response["multiValueHeaders"].get("x-request-id") or [
        response["headers"]["x-request-id"]
    ]
    assert response["statusCode"] == 200
    assert echoed[0] != "abc\n" and len(echoed[0]) == 32


def test_browsers_may_send_x_api_key():
    settings = make_settings(cors_allow_origins="https://app.example.com")
    app = create_app(settings, Services.from_settings(settings))
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key",
    }
    with LiveServer(app) as server:
        response = httpx.options(f"{server.url}/api/v1/chat", headers=preflight)
    assert response.status_code == 200
    assert "x-api-key" in response.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("detail", ["basic", "full"])
def test_system_info_shows_paths_pids_and_upstream_only_in_full(detail):
    settings = make_settings(system_info_detail=detail, openai_base_url="http://10.1.2.3:4/v1")
    app = create_app(settings, Services.from_settings(settings))
    with LiveServer(app) as server:
        text = httpx.get(f"{server.url}/api/v1/system/info").text
    for secret in ("10.1.2.3", '"process_id"', '"executable"', '"model_path"'):
        assert (secret in text) == (detail == "full"), secret


S = LONE_SURROGATE
NESTED = [
    (
        "/v1/chat/completions",
        '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": '
        '{"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", '
        f'"description": "a{S}"}}}}}}}}',
        "response_format.json_schema.schema.description",
    ),
    (
        "/v1/chat/completions",
        '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": '
        f'"function", "function": {{"name": "f", "description": "{S}"}}}}]}}',
        "tools.0.function.description",
    ),
    (
        "/v1/responses",
        '{"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": '
        f'{{"type": "object", "properties": {{"q": {{"description": "x{S}"}}}}}}}}]}}',
        "tools.0.parameters.properties.q.description",
    ),
    (
        "/v1/chat/completions",
        '{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", '
        f'"image_url": {{"url": "https://x/{S}"}}}}]}}]}}',
        "messages.0.content.0.image_url.url",
    ),
    ("/v1/responses", f'{{"model": "m", "input": "hi", "metadata": {{"k": "{S}"}}}}', "metadata.k"),
]


@pytest.mark.parametrize(("path", "raw", "param"), NESTED, ids=[n[2] for n in NESTED])
def test_a_lone_surrogate_anywhere_in_a_body_is_a_400_naming_it(fake, path, raw, param):
    with serve(fake) as server:
        response = post_raw(server, path, raw, {"Authorization": f"Bearer {CALLER_KEY}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert fake.seen == []


def test_a_lone_surrogate_in_a_nested_field_through_the_lambda_handler(monkeypatch):
    app, event = on_lambda(monkeypatch)
    event["body"] = (
        '{"user_message": "안녕", "response_format": {"type": "json_schema", "json_schema": '
        f'{{"schema": {{"type": "object", "title": "{S}"}}}}}}}}'
    )
    response = Mangum(app, lifespan="off")(event, LambdaContext())
    assert response["statusCode"] == 422
    param = json.loads(response["body"])["error"]["param"]
    assert param == "response_format.json_schema.schema.title"


def test_an_unknown_parameter_name_is_echoed_bounded(fake):
    name = "x" * 900_000
    with serve(fake, max_body_bytes=2_000_000) as server:
        response = post_raw(
            server,
            "/v1/responses",
            json.dumps({"model": "m", "input": "hi", name: 1}),
            {"Authorization": f"Bearer {CALLER_KEY}"},
        )
    assert response.status_code == 400
    assert len(response.content) < 2_000
    assert response.json()["error"]["code"] == "unknown_parameter"


def test_a_body_that_never_finishes_arriving_is_a_408(fake):
    with serve(fake, body_read_timeout_seconds=0.5) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"user_message": '
            )
            sock.settimeout(30)
            answer = b""
            while chunk := sock.recv(4096):  # until the server closes the connection
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"request_timeout" in answer


def test_a_cursor_past_what_a_store_can_hold_is_a_422_naming_it(fake):
    """Found by schemathesis: 20 digits overflowed SQLite's integer (a 500)."""
    with serve(fake) as server:
        response = httpx.get(
            f"{server.url}/api/v1/sessions/s1",
            params={"cursor": "99999999999999999999"},
            headers={"X-Api-Key": "client-1"},
        )
        largest = httpx.get(
            f"{server.url}/api/v1/sessions/s1",
            params={"cursor": "9" * 18},
            headers={"X-Api-Key": "client-1"},
        )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "query.cursor"
    assert largest.status_code == 200 and largest.json()["turns"] == []


def nested_schema(levels: int) -> dict:
    """An array of arrays ... `levels` deep: one JSON level a schema level."""
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "hi"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "deep", "schema": nested_schema(501)},
                },
            },
            "response_format",
        ),
        (
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "deep", "parameters": nested_schema(501)},
                    }
                ],
            },
            "tools.0.function.parameters",
        ),
        (
            "/v1/responses",
            {
                "input": "hi",
                "text": {
                    "format": {"type": "json_schema", "name": "d", "schema": nested_schema(501)}
                },
            },
            "text.format",
        ),
    ],
)
def test_a_schema_nested_501_levels_at_temperature_0_is_a_400_naming_it(fake, path, body, param):
    """The cache key (temperature 0) walked it recursively: a RecursionError, a 500."""
    auth = {"Authorization": f"Bearer {CALLER_KEY}"}
    raw = json.dumps({"model": "gpt-4o-mini", "temperature": 0, **body})
    with serve(fake) as server:
        response = post_raw(server, path, raw, auth)
        native = post_raw(
            server,
            "/api/v1/chat",
            json.dumps(
                {
                    "user_message": "hi",
                    "temperature": 0,
                    "openai_api_key": CALLER_KEY,
                    "response_format": {"type": "json_schema", "schema": nested_schema(501)},
                }
            ),
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == "schema_too_deep"
    assert native.status_code == 422  # the native API answers a bad value 422, naming it
    assert native.json()["error"]["param"] == "response_format"
    assert fake.seen == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_in_utf16_or_utf32_is_a_400_even_with_a_lone_surrogate(fake, encoding):
    """json.loads reads UTF-16 and UTF-32 too: a lone surrogate there passed the UTF-8 check."""
    body = '{"user_message": "a\ud800b", "openai_api_key": "' + CALLER_KEY + '"}'
    with serve(fake) as server:
        response = httpx.post(
            f"{server.url}/api/v1/chat",
            content=body.encode(encoding, "surrogatepass"),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_encoding"
    assert "UTF-8" in response.json()["error_message"]
    assert fake.seen == []


@pytest.mark.parametrize("name", ["a%00.js", "%00", "x" * 300 + ".js", "..%2f..%2fetc%2fpasswd"])
def test_an_impossible_static_name_is_a_404(name):
    """The pages are public on API Gateway: a NUL or a name too long reached the file system."""
    with serve() as server:
        response = httpx.get(f"{server.url}/static/{name}")
        real = httpx.get(f"{server.url}/static/playground/playground.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert real.status_code == 200


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("tenant_monthly_budget_usd", "inf"),
        ("tenant_monthly_budget_usd", "nan"),
        ("tenant_budgets_usd", '{"apikey:a": Infinity}'),
        ("model_prices", '{"m": {"input": 1, "output": Infinity}}'),
        ("model_prices", '{"*": {"input": 0, "output": 0}}'),
    ],
)
def test_a_budget_or_price_that_is_not_a_finite_amount_stops_the_server(variable, value):
    """`inf` started, then every server-paid turn and /api/v1/usage answered 500."""
    from llm_server.config.settings import load_settings
    from llm_server.exceptions import ConfigurationException

    with pytest.raises(ConfigurationException) as raised:
        load_settings(_env_file=None, **{variable: value})
    assert variable.upper() in raised.value.message


@pytest.mark.parametrize(
    ("headers", "chunked"),
    [({}, False), ({"content-type": "text/plain"}, True), ({}, True)],
    ids=["no-type", "text-chunked", "no-type-chunked"],
)
def test_a_json_route_refuses_a_body_that_is_not_declared_json(fake, headers, chunked):
    """The fast JSON path read any body as JSON: a 415, chunked or not, as docs/security.md says."""
    raw = json.dumps({"user_message": "hi", "openai_api_key": CALLER_KEY}).encode()
    content = iter([raw]) if chunked else raw
    with serve(fake) as server:
        response = httpx.post(f"{server.url}/api/v1/chat", content=content, headers=headers)
        declared = httpx.post(
            f"{server.url}/api/v1/chat",
            content=raw,
            headers={"content-type": "application/json; charset=utf-8"},
        )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert declared.status_code == 200
    assert len(fake.seen) == 1
