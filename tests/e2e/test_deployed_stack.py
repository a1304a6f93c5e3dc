"""The built SAM stack, deployed to an AWS emulator, answering through the emulated REST API."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from botocore.exceptions import ClientError

from e2e.conftest import CLAUDE, NOVA, ORIGIN, SERVER_KEY, parameters
from helpers.aws_emulator import Stack, role_credentials, stream_function, update

CALLER_KEY = "sk-e2e-caller-" + "c" * 40


def call(stack: Stack, method: str, path: str, key: bool = True, **kw) -> httpx.Response:
    headers = {"x-api-key": stack.api_key} if key else {}
    return httpx.request(method, f"{stack.api}{path}", headers=headers, timeout=60, **kw)


def chat(stack: Stack, **fields) -> httpx.Response:
    return call(stack, "POST", "/api/v1/chat", json={"user_message": "안녕하세요", **fields})


def test_health_is_public_and_every_other_route_needs_a_key(stack):
    assert call(stack, "GET", "/api/v1/health", key=False).status_code == 200
    for method, path in [
        ("POST", "/api/v1/chat"),
        ("GET", "/api/v1/system/info"),
        ("GET", "/api/v1/sessions/s1"),
        ("DELETE", "/api/v1/sessions/s1"),
        ("GET", "/v1/models"),
    ]:
        assert call(stack, method, path, key=False).status_code == 401, (method, path)
        made_up = httpx.request(
            method, f"{stack.api}{path}", headers={"x-api-key": "llms_" + "x" * 43}, timeout=60
        )
        assert made_up.status_code == 401, (method, path)
    assert call(stack, "GET", "/api/v1/system/info").status_code == 200


def test_the_api_invokes_a_published_snapstart_version_restored_after_its_hooks(stack):
    """The gateway calls the alias `live`; its version's init ran the SnapStart hooks."""
    info = call(stack, "GET", "/api/v1/system/info").json()["lambda"]
    assert info["function_version"] not in (None, "$LATEST")
    assert info["restored_from_snapshot"] is True
    lambda_client = stack.client("lambda")
    for output in ("FunctionArn", "StreamFunctionArn"):
        name = stack.outputs[output]
        alias = lambda_client.get_alias(FunctionName=name, Name="live")
        version = lambda_client.get_function_configuration(
            FunctionName=name, Qualifier=alias["FunctionVersion"]
        )
        assert version["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
        assert version["Runtime"] == "python3.13"


def test_free_mode_uses_the_key_from_secrets_manager(stack, upstream):
    response = chat(stack, free_mode=True)
    assert response.status_code == 200, response.text
    assert response.json()["api_key_source"] == "server"
    assert upstream.seen[-1].headers["authorization"] == f"Bearer {SERVER_KEY}"
    assert SERVER_KEY not in response.text


def test_a_caller_key_is_reported_as_user(stack, upstream):
    response = chat(stack, openai_api_key=CALLER_KEY)
    assert response.status_code == 200 and response.json()["api_key_source"] == "user"
    assert upstream.seen[-1].headers["authorization"] == f"Bearer {CALLER_KEY}"


def test_a_session_is_stored_in_dynamodb_and_read_back(stack):
    assert chat(stack, session_id="e2e-s1", openai_api_key=CALLER_KEY).status_code == 200
    read = call(stack, "GET", "/api/v1/sessions/e2e-s1")
    assert read.status_code == 200 and read.json()["turns"][0]["user"] == "안녕하세요"
    items = stack.client("dynamodb").scan(TableName=stack.outputs["TableName"])["Items"]
    sessions = {item["pk"]["S"] for item in items if item["pk"]["S"].startswith("session#")}
    assert any(pk.startswith("session#gk:") and pk.endswith("#e2e-s1") for pk in sessions)


def test_a_repeated_deterministic_request_is_a_cache_hit(stack, upstream):
    body = {"user_message": "2+2?", "temperature": 0, "openai_api_key": CALLER_KEY}
    first, second = chat(stack, **body), chat(stack, **body)
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert second.json()["response_text"] == first.json()["response_text"]


def test_the_function_role_reads_its_secret_and_no_other(stack):
    credentials = role_credentials(stack, stack.outputs["FunctionArn"])
    secrets = stack.client("secretsmanager", **credentials)
    own = stack.client("lambda").get_function_configuration(
        FunctionName=stack.outputs["FunctionArn"]
    )["Environment"]["Variables"]["OPENAI_SECRET_NAME"]
    assert SERVER_KEY in secrets.get_secret_value(SecretId=own)["SecretString"]
    with pytest.raises(ClientError) as denied:
        secrets.get_secret_value(SecretId="someone-elses-secret")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_every_request_writes_its_emf_metrics(stack):
    resources = stack.client("cloudformation").describe_stack_resources(StackName=stack.name)
    group = next(
        r["PhysicalResourceId"]
        for r in resources["StackResources"]
        if r["LogicalResourceId"] == "FunctionLogGroup"
    )
    before = _emf_requests(stack, group)
    for _ in range(3):
        call(stack, "GET", "/api/v1/system/info")
    deadline = time.monotonic() + 10
    while _emf_requests(stack, group) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _emf_requests(stack, group) == before + 3


def _emf_requests(stack: Stack, group: str) -> int:
    events = stack.client("logs").filter_log_events(logGroupName=group)["events"]
    blobs = [json.loads(e["message"]) for e in events if '"_aws"' in e["message"]]
    return sum(1 for blob in blobs if "Requests" in blob)


def test_the_stream_function_streams_both_openai_apis(stack, upstream):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = json.dumps({"identity": {"apiKeyId": "e2e-key-id"}, "requestId": "e2e-req"})
    headers = {"Authorization": f"Bearer {CALLER_KEY}", "x-amzn-request-context": context}
    base = f"http://127.0.0.1:{port}/v1"
    with stream_function(stack, port) as process:
        completions = httpx.post(
            f"{base}/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers=headers,
            timeout=60,
        )
        responses = httpx.post(
            f"{base}/responses",
            json={"model": "gpt-4o-mini", "stream": True, "input": "hi"},
            headers=headers,
            timeout=60,
        )
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert completions.status_code == 200 and completions.text.rstrip().endswith("data: [DONE]")
    assert responses.status_code == 200 and "event: response.completed" in responses.text
    requests = [line for line in output.splitlines() if '"_aws"' in line and '"Requests"' in line]
    assert len(requests) >= 3  # readiness check and both streams, each flushed at once


def test_browsers_can_call_every_route_and_read_gateway_errors(stack):
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-api-key",
    }
    for path in ("/api/v1/system/info", "/api/v1/sessions/s1", "/v1/models"):
        answer = httpx.options(f"{stack.api}{path}", headers=preflight, timeout=60)
        assert answer.status_code == 200, path
        assert answer.headers["access-control-allow-origin"] == ORIGIN, path
        assert "x-api-key" in answer.headers["access-control-allow-headers"].lower(), path
    refused = httpx.get(f"{stack.api}/api/v1/system/info", headers={"Origin": ORIGIN}, timeout=60)
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN


def test_the_pages_load_their_schema_scripts_and_styles_under_the_stage(stack):
    """The docs and the playground, public at the stage, each asset from the stage too."""
    page = call(stack, "GET", "/docs", key=False)
    assert page.status_code == 200 and 'data-openapi="/dev/openapi.json"' in page.text
    assert call(stack, "GET", "/openapi.json", key=False).json()["info"]["title"] == "LLM Server"
    playground = call(stack, "GET", "/", key=False)
    assert playground.status_code == 200 and 'data-base="/dev"' in playground.text
    assert "script-src 'self'" in playground.headers["content-security-policy"]
    for asset in (
        "/static/swagger-ui/swagger-ui-bundle.js",
        "/static/swagger-ui/swagger-ui.css",
        "/static/docs.js",
        "/static/playground/playground.js",
        "/static/playground/playground.css",
    ):
        assert f'"/dev{asset}"' in page.text + playground.text, asset
        loaded = call(stack, "GET", asset, key=False)
        assert loaded.status_code == 200 and len(loaded.content) > 100, asset
    bundle = call(stack, "GET", "/static/swagger-ui/swagger-ui-bundle.js", key=False)
    assert bundle.headers["content-type"].startswith("text/javascript")


UNLISTED = "meta.llama3-8b-instruct-v1:0"  # in no deployment's BedrockModels


def test_a_bedrock_model_answers_through_the_gateway_on_the_servers_account(stack):
    response = chat(stack, model=NOVA)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["api_key_source"]) == (NOVA, "server")
    assert body["response_text"] and body["output_tokens"] > 0
    models = {m["id"]: m["owned_by"] for m in call(stack, "GET", "/v1/models").json()["data"]}
    assert models[NOVA] == "bedrock"
    refused = chat(stack, model=UNLISTED)  # not in BedrockModels: never sent to Bedrock
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"


def converse(client, model: str) -> dict:
    return client.converse(
        modelId=model, messages=[{"role": "user", "content": [{"text": "안녕"}]}]
    )


def test_the_function_roles_may_invoke_exactly_the_listed_bedrock_models(stack):
    for output in ("FunctionArn", "StreamFunctionArn"):
        credentials = role_credentials(stack, stack.outputs[output])
        bedrock = stack.client("bedrock-runtime", **credentials)
        assert converse(bedrock, NOVA)["stopReason"] == "end_turn"
        with pytest.raises(ClientError) as denied:
            converse(bedrock, UNLISTED)
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException", output


def test_a_parameter_change_alone_reaches_the_live_alias(stack, upstream):
    """An update changing only BedrockModels publishes new versions behind `live`: the gateway
    serves the new model, and the roles may invoke it (SAM alone would publish nothing)."""
    lambda_client = stack.client("lambda")
    before = lambda_client.get_alias(FunctionName=stack.outputs["FunctionArn"], Name="live")
    secret = lambda_client.get_function_configuration(FunctionName=stack.outputs["FunctionArn"])[
        "Environment"
    ]["Variables"]["OPENAI_SECRET_NAME"]
    update(
        stack,
        parameters(secret, BedrockModels=f"{NOVA},{CLAUDE}"),
        {"OPENAI_BASE_URL": upstream.url},
    )
    after = lambda_client.get_alias(FunctionName=stack.outputs["FunctionArn"], Name="live")
    assert after["FunctionVersion"] != before["FunctionVersion"]
    models = {m["id"] for m in call(stack, "GET", "/v1/models").json()["data"]}
    assert CLAUDE in models
    answered = chat(stack, model=CLAUDE)
    assert answered.status_code == 200 and answered.json()["model"] == CLAUDE


def test_a_tenant_reads_its_own_usage_and_spend_through_the_gateway(stack, upstream):
    before = call(stack, "GET", "/api/v1/usage").json()
    assert chat(stack, free_mode=True).status_code == 200
    assert chat(stack, model=NOVA).status_code == 200
    after = call(stack, "GET", "/api/v1/usage")
    assert after.status_code == 200, after.text
    usage = after.json()
    assert usage["owner"].startswith("gk:") and usage["cost_usd"] > before["cost_usd"]
    rows = {(r["provider"], r["api_key_source"]): r for r in usage["by_model"]}
    assert rows["openai", "server"]["cost_usd"] > 0 and rows["bedrock", "server"]["requests"] >= 1
    assert call(stack, "GET", "/api/v1/usage", key=False).status_code == 401  # no key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


BACKGROUND_HEADERS = {
    "Authorization": f"Bearer {CALLER_KEY}",
    "x-amzn-request-context": json.dumps({"identity": {"apiKeyId": "e2e-key-id"}}),
}


def _queue_and_poll(base: str, text: str, seconds: float) -> tuple[httpx.Response, httpx.Response]:
    """Queue a background response; poll it until it has finished (or `seconds` have passed)."""
    queued = httpx.post(
        f"{base}/responses",
        json={"model": "gpt-4o-mini", "input": text, "background": True},
        headers=BACKGROUND_HEADERS,
        timeout=60,
    )
    assert queued.status_code == 200, queued.text
    url = f"{base}/responses/{queued.json()['id']}"
    end = time.monotonic() + seconds
    while True:
        polled = httpx.get(url, headers=BACKGROUND_HEADERS, timeout=60)
        if polled.json()["status"] not in ("queued", "in_progress") or time.monotonic() > end:
            return queued, polled
        time.sleep(0.5)


def test_a_background_response_completes_in_its_own_function_after_the_request_returned(
    stack, upstream
):
    port = _free_port()
    with stream_function(stack, port):
        queued, polled = _queue_and_poll(f"http://127.0.0.1:{port}/v1", "백그라운드", 120)
    response_id, status = queued.json()["id"], polled.json()["status"]
    assert queued.json()["status"] == "queued"
    assert status == "completed", polled.text
    assert polled.json()["output"][0]["content"][0]["text"] == "echo: 백그라운드"
    group = f"/aws/lambda/{stack.name}-background"
    events = stack.client("logs").filter_log_events(logGroupName=group)["events"]
    assert any(response_id in e["message"] for e in events)  # it ran in BackgroundFunction


def test_a_background_invocation_that_dies_ends_failed_not_in_progress(stack, upstream):
    """Its invocation dies before the run can say so (a setting the function cannot start with).

    The emulator does not end an invocation at its timeout, so a crash stands in for the kill:
    either way the run is left `in_progress`, or `queued`, with no worker.
    """
    lam = stack.client("lambda")
    functions = lam.list_functions()["Functions"]
    function = next(
        f["FunctionName"] for f in functions if "BackgroundFunction" in f["FunctionName"]
    )
    deployed = lam.get_function_configuration(FunctionName=function)["Environment"]
    broken = {"Variables": {**deployed["Variables"], "LOG_LEVEL": "LOUD"}}  # refused at start
    port = _free_port()
    lam.update_function_configuration(FunctionName=function, Environment=broken)
    changed = {"BACKGROUND_TIMEOUT_SECONDS": "10", "BACKGROUND_FUNCTION": function}  # $LATEST
    try:
        with stream_function(stack, port, **changed):
            queued, polled = _queue_and_poll(f"http://127.0.0.1:{port}/v1", "죽는다", 90)
    finally:
        lam.update_function_configuration(FunctionName=function, Environment=deployed)
    assert queued.json()["status"] == "queued"
    failed = polled.json()
    assert failed["status"] == "failed", failed  # at its deadline (10 s) and 30 s more
    assert failed["error"] == {
        "code": "server_error",
        "message": "The background run stopped unfinished",
    }
    assert all(
        seen.body.get("input") != [{"role": "user", "content": "죽는다"}] for seen in upstream.seen
    )
