"""The real Lambda handler (Mangum + Powertools) with every API Gateway event in `events/`.

Run as deployed (`make test-lambda`: Python 3.13, the code `sam build` produced): the template's
provider (OpenAI's Responses API, here its stand-in on loopback through the real SDK), the
server's key for free mode, and each normal-mode chat carrying its caller's key.
"""

import json
import os
import subprocess
import sys

import invoke
import pytest

from helpers.fake_openai import Step
from helpers.lambda_events import CALLER_KEY, EVENTS, emf_blobs, load, value
from helpers.logs import capture_logs
from helpers.template import transformed_template
from llm_server.native_api.schemas import ChatResponse

CHAT_FIELDS = set(ChatResponse.model_fields)
# events/: REST API (payload 1.0) events as the deployed gateway sends them; events/http-api/:
# HTTP API (payload 2.0) events, for other front doors.
EXPECTED_STATUS = {
    **{
        f"{folder}{name}": status
        for folder in ("", "http-api/")
        for name, status in {
            "chat.json": 200,
            "chat-korean.json": 200,
            "chat-free-mode.json": 200,
            "chat-history-memory.json": 200,
            "chat-base64.json": 200,
            "chat-missing-user-message.json": 422,
            "chat-malformed-json.json": 400,
            "system-info.json": 200,
            "health.json": 200,
            "chat-stream.json": 200,
            "chat-completions.json": 200,
        }.items()
    },
    # Free mode spends the server's key, so it needs an identity the gateway vouches for (a REST
    # API key id, an authorizer's principal): an HTTP API event without an authorizer has none.
    "http-api/chat-free-mode.json": 401,
    "session-read.json": 404,
    "docs.json": 200,
    "http-api/chat-stage-prefix.json": 200,
    "http-api/unknown-route.json": 404,
}


def test_every_event_file_has_an_expectation():
    found = {str(p.relative_to(EVENTS)) for p in EVENTS.glob("**/*.json")}
    assert found == set(EXPECTED_STATUS)


def test_rest_events_use_the_resources_the_template_defines():
    paths = transformed_template()["Resources"]["ChatApi"]["Properties"]["Body"]["paths"]
    for event_file in EVENTS.glob("*.json"):
        event = load(event_file.name)
        assert event["httpMethod"].lower() in paths[event["resource"]], event_file.name
        assert event["requestContext"]["path"] == f"/dev{event['path']}"


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_event_through_the_real_handler(lambda_env, name):
    event = load(name)
    response = invoke.invoke(event)
    assert response["statusCode"] == EXPECTED_STATUS[name], response
    assert response["isBase64Encoded"] is False
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["x-request-id"] == event["requestContext"]["requestId"]
    if "/" not in name:
        assert "multiValueHeaders" in response  # a payload 1.0 answer for a REST API
    if name == "docs.json":  # Swagger UI loads the schema under the stage the gateway removed
        assert 'data-openapi="/dev/openapi.json"' in response["body"]
        assert '<script src="/dev/static/docs.js">' in response["body"]
        return
    if name.endswith("chat-stream.json"):  # Mangum buffers: the whole event stream, at once
        assert headers["content-type"].startswith("text/event-stream")
        assert response["body"].startswith("event: delta\n")
        assert "\nevent: done\ndata: {" in response["body"]
        return
    assert headers["content-type"] == "application/json"
    body = json.loads(response["body"])
    if name.endswith("chat-completions.json"):
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
        return
    if name.rpartition("/")[2].startswith("chat") or name.endswith("unknown-route.json"):
        assert set(body) >= CHAT_FIELDS
        assert body["success"] is (response["statusCode"] == 200)
    if response["statusCode"] >= 400:
        assert body["error"]["code"] or body["error"]["message"]


def test_korean_history_memory_and_role_reach_the_upstream(lambda_env, upstream):
    body = json.loads(invoke.invoke(load("chat-history-memory.json"))["body"])
    assert body["session_id"] == "evt-history"
    assert body["response_text"].strip()
    assert body["instructions"] == "한 문장으로 답하세요."
    assert body["api_key_source"] == "user"
    sent = upstream.seen[-1]
    assert sent.headers["authorization"] == f"Bearer {CALLER_KEY}"
    assert "한 문장으로 답하세요." in sent.body["instructions"]
    assert "여행 가이드" in sent.body["instructions"]
    assert "사용자는 채식주의자다" in json.dumps(sent.body, ensure_ascii=False)
    assert [m["role"] for m in sent.body["input"]][-1] == "user"
    assert len(sent.body["input"]) == 5  # four history turns and the new message


def test_logs_are_json_with_the_gateway_request_id_as_correlation_id(lambda_env):
    with capture_logs() as logs:
        invoke.invoke(load("chat.json"))
    request_lines = [r for r in logs.records() if r["message"] == "request"]
    assert len(request_lines) == 1
    line = request_lines[0]
    assert line["correlation_id"] == "req-chat"
    assert line["request_id"] == "req-chat"
    assert line["function_name"] == "llm-server-local"
    assert "cold_start" in line and line["status"] == 200


def test_emf_metrics_by_name_value_and_dimensions(lambda_env, capsys):
    capsys.readouterr()
    body = json.loads(invoke.invoke(load("chat.json"))["body"])
    blobs = emf_blobs(capsys.readouterr().out)
    totals = next(b for b in blobs if "Requests" in b)
    directive = totals["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "LLMServer"
    assert directive["Dimensions"] == [["service"]]
    assert totals["service"] == "llm-server"
    assert value(totals, "Requests") == 1 and value(totals, "Errors") == 0
    assert value(totals, "Latency") > 0
    assert value(totals, "UpstreamLatency") > 0
    assert value(totals, "InputTokens") == body["input_tokens"]
    assert value(totals, "OutputTokens") == body["output_tokens"]
    assert value(totals, "TotalTokens") == body["total_tokens_used"]
    by_model = next(b for b in blobs if "model" in b)
    assert by_model["model"] == body["model"] and by_model["api_key_source"] == "user"
    assert sorted(by_model["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == [
        "api_key_source",
        "model",
        "service",
    ]


def test_errors_are_counted_by_type(lambda_env, capsys):
    capsys.readouterr()
    invoke.invoke(load("chat-malformed-json.json"))
    blobs = emf_blobs(capsys.readouterr().out)
    assert value(next(b for b in blobs if "Requests" in b), "Errors") == 1
    by_type = next(b for b in blobs if "error_type" in b)
    assert by_type["error_type"] == "invalid_request_error" and value(by_type, "Errors") == 1


def test_no_key_material_in_responses_logs_or_metrics(lambda_env, upstream, capsys):
    event = load("chat.json")
    # OpenAI's own 401 quotes the key it refused.
    refusal = f"Incorrect API key provided: {CALLER_KEY}."
    upstream.enqueue(Step(status=401, error_code="invalid_api_key", message=refusal))
    capsys.readouterr()
    with capture_logs() as logs:
        response = invoke.invoke(event)
    output = capsys.readouterr()
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "invalid_api_key"
    for text in (response["body"], logs.text, output.out, output.err):
        assert CALLER_KEY not in text and CALLER_KEY[8:20] not in text


def test_cli_cold_start_base_path_and_system_info():
    """`events/invoke.py` in a fresh process: a cold start, behind a custom-domain base path."""
    event = load("http-api/health.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/llm/api/v1/system/info"
    env = {**os.environ, "API_GATEWAY_BASE_PATH": "/llm", "LOG_FILE": ""}
    result = subprocess.run(
        [sys.executable, str(EVENTS / "invoke.py"), "-"],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    emf = emf_blobs(result.stdout)
    assert [value(b, "ColdStart") for b in emf if "ColdStart" in b] == [1]
    printed = json.loads(result.stdout[result.stdout.index('{\n  "statusCode"') :])
    assert printed["statusCode"] == 200
    info = printed["body"]["lambda"]
    assert info["cold_start"] is True and info["invocations"] == 1
    assert info["function_name"] == "llm-server-local"
    assert info["memory_limit_mb"] == 512
    remaining = info["remaining_time_ms"]  # what the context said, within the function's timeout
    assert isinstance(remaining, int) and 0 <= remaining <= 29000
    assert info["log_group"] and info["log_stream"] and info["runtime"] and info["region"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda e: {k: v for k, v in e.items() if k != "requestContext"},
        lambda e: {**e, "isBase64Encoded": True, "body": "!!!not base64!!!"},
        lambda e: {},
        lambda e: {"Records": [{"eventSource": "aws:sqs"}]},
        lambda e: {**e, "requestContext": {**e["requestContext"], "http": None}},
    ],
    ids=["no-request-context", "bad-base64", "empty", "not-api-gateway", "http-null"],
)
def test_a_malformed_event_is_a_400_not_a_crash(lambda_env, mangle):
    response = invoke.invoke(mangle(load("http-api/chat.json")))  # the 2.0 shape, mangled
    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert body["error"]["code"] == "bad_event" and body["success"] is False
    assert invoke.invoke(load("health.json"))["statusCode"] == 200


def test_requests_outside_the_lambda_handler_flush_their_own_metrics(lambda_env, capsys):
    """As behind the Web Adapter (no Python handler): nothing stays buffered to leak or be lost."""
    from mangum import Mangum

    from llm_server.asgi import app

    capsys.readouterr()
    Mangum(app, lifespan="off")(load("health.json"), invoke.LambdaContext())
    blobs = emf_blobs(capsys.readouterr().out)
    assert value(next(b for b in blobs if "Requests" in b), "Requests") == 1
    invoke.invoke(load("chat-malformed-json.json"))  # the handler's own blob: this request only
    blobs = emf_blobs(capsys.readouterr().out)
    assert value(next(b for b in blobs if "Requests" in b), "Requests") == 1
