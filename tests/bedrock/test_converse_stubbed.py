"""What the emulator cannot produce, on boto3's real bedrock-runtime client under `Stubber`.

Stop reasons other than end_turn/tool_use, throttling, validation and access errors, images,
prompt caching and its usage, and fallbacks, each through our HTTP API and the official SDK.
Stubber checks every request against Bedrock's own service model, as Bedrock would.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import ANY, Stubber

import openai
from helpers.bedrock import CLAUDE, KNOWN, NOVA
from helpers.fake_openai import FakeOpenAI, Step
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.logs import capture_logs
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.providers.bedrock.provider import BedrockProvider
from llm_server.providers.retry import RetryPolicy

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

LLAMA = "meta.llama3-8b-instruct-v1:0"
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def converse_answer(text="안녕하세요", stop="end_turn", **usage: int) -> dict[str, Any]:
    counts = {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8, **usage}
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": counts,
        "metrics": {"latencyMs": 12},
    }


@pytest.fixture
def stub() -> Iterator[Stubber]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="ap-northeast-2",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def serve(stub: Stubber, openai_fake=None, models=f"{NOVA},{CLAUDE}", **overrides) -> LiveServer:
    overrides.setdefault("llm_provider", "openai")
    settings = make_settings(bedrock_models=models, **overrides)
    bedrock = BedrockProvider(
        settings.bedrock_model_list(),
        prompt_caching=settings.bedrock_prompt_caching,
        retry=RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02),
        client=stub.client,
    )
    openai_provider = None if openai_fake else FailingProvider(AssertionError("not OpenAI"))
    services = Services.from_settings(settings, bedrock=bedrock, openai=openai_provider)
    return LiveServer(create_app(settings, services))


def sdk(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="EMPTY", default_headers=KNOWN, max_retries=0
    )


def ask(server: LiveServer, model: str = NOVA, **extra):
    return sdk(server).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "안녕"}], **extra
    )


def error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"service_error_code": code, "service_message": message, "http_status_code": status}


@pytest.mark.parametrize(
    ("stop", "finish", "incomplete"),
    [
        ("max_tokens", "length", "max_output_tokens"),
        ("stop_sequence", "stop", None),
        ("guardrail_intervened", "content_filter", "content_filter"),
        ("content_filtered", "content_filter", "content_filter"),
    ],
)
def test_stop_reasons_are_mapped_on_both_apis(stub, stop, finish, incomplete):
    stub.add_response("converse", converse_answer(stop=stop))
    stub.add_response("converse", converse_answer(stop=stop))
    with serve(stub) as server:
        assert ask(server).choices[0].finish_reason == finish
        response = sdk(server).responses.create(model=NOVA, input="안녕")
    assert response.status == ("incomplete" if incomplete else "completed")
    details = response.incomplete_details
    assert (details.reason if details else None) == incomplete


def test_a_throttled_call_is_retried_then_answered(stub):
    stub.add_client_error("converse", **error("ThrottlingException", "Too many requests", 429))
    stub.add_response("converse", converse_answer())
    with serve(stub) as server:
        assert ask(server).choices[0].message.content == "안녕하세요"


def test_throttling_past_the_retries_is_a_429_with_retry_after(stub):
    for _ in range(3):
        stub.add_client_error("converse", **error("ThrottlingException", "Slow down", 429))
    with serve(stub) as server, pytest.raises(openai.RateLimitError) as raised:
        ask(server)
    assert raised.value.code == "upstream_rate_limited"
    assert raised.value.response.headers["Retry-After"] == "2"


def test_a_validation_error_is_a_400_naming_what_bedrock_refused(stub):
    refusal = "The value at messages.0.content.0.text failed to satisfy constraint"
    stub.add_client_error("converse", **error("ValidationException", refusal, 400))
    with serve(stub) as server, pytest.raises(openai.BadRequestError) as raised:
        ask(server)
    assert raised.value.code == "upstream_validation_error"
    assert refusal in raised.value.message


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("AccessDeniedException", "You don't have access to the model", 403),
        ("ResourceNotFoundException", "Model not found", 404),
        (
            "ValidationException",
            "Invocation of model ID amazon.nova-lite-v1:0 with on-demand throughput isn't "
            "supported",
            400,
        ),
    ],
)
def test_the_operators_faults_are_502_and_logged_loudly(stub, code, message, status):
    stub.add_client_error("converse", **error(code, message, status))
    with serve(stub) as server, capture_logs() as logs:
        with pytest.raises(openai.InternalServerError) as raised:
            ask(server)
    assert raised.value.status_code == 502
    assert raised.value.code == "bedrock_model_unavailable"
    assert "operator" in raised.value.message
    loud = [r for r in logs.records() if r.get("error_code") == "bedrock_model_unavailable"]
    assert loud and loud[0]["level"] == "ERROR" and message in loud[0]["reason"]


def test_an_unavailable_model_is_retried_then_a_503(stub):
    for _ in range(3):
        stub.add_client_error("converse", **error("ServiceUnavailableException", "busy", 503))
    with serve(stub) as server, pytest.raises(openai.InternalServerError) as raised:
        ask(server)
    assert raised.value.status_code == 503 and raised.value.code == "upstream_unavailable"
    assert raised.value.response.headers["Retry-After"]


def test_a_model_timeout_past_the_retries_is_a_504(stub):
    for _ in range(3):
        stub.add_client_error("converse", **error("ModelTimeoutException", "slow", 408))
    with serve(stub) as server, pytest.raises(openai.APIStatusError) as raised:
        ask(server)
    assert raised.value.status_code == 504


def test_a_data_url_image_goes_up_as_image_bytes(stub):
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content = [
        {"type": "text", "text": "무엇이 보이나요?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    expected = {
        "modelId": CLAUDE,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "무엇이 보이나요?"},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                ],
            }
        ],
        "inferenceConfig": ANY,
    }
    stub.add_response("converse", converse_answer("점 하나"), expected)
    with serve(stub) as server:
        answer = sdk(server).chat.completions.create(
            model=CLAUDE, messages=[{"role": "user", "content": content}]
        )
    assert answer.choices[0].message.content == "점 하나"


def test_prompt_caching_puts_cache_points_and_reports_cached_tokens(stub):
    expected = {
        "modelId": CLAUDE,
        "system": [{"text": "긴 시스템 프롬프트"}, {"cachePoint": {"type": "default"}}],
        "messages": ANY,
        "inferenceConfig": ANY,
        "toolConfig": {
            "tools": [
                {"toolSpec": {"name": "lookup", "inputSchema": {"json": ANY}}},
                {"cachePoint": {"type": "default"}},
            ],
            "toolChoice": {"auto": {}},
        },
    }
    answer = converse_answer(cacheReadInputTokens=900, cacheWriteInputTokens=100)
    stub.add_response("converse", answer, expected)
    with serve(stub, bedrock_prompt_caching=True) as server:
        reply = sdk(server).chat.completions.create(
            model=CLAUDE,
            messages=[
                {"role": "system", "content": "긴 시스템 프롬프트"},
                {"role": "user", "content": "안녕"},
            ],
            tools=[TOOL],
        )
    assert reply.usage.prompt_tokens == 1005  # 5 uncached + 900 read + 100 written
    assert reply.usage.prompt_tokens_details.cached_tokens == 900


def test_no_cache_point_for_a_model_that_has_none(stub):
    expected = {
        "modelId": LLAMA,
        "system": [{"text": "시스템"}],
        "messages": ANY,
        "inferenceConfig": ANY,
    }
    stub.add_response("converse", converse_answer(), expected)
    with serve(stub, models=LLAMA, bedrock_prompt_caching=True) as server:
        sdk(server).chat.completions.create(
            model=LLAMA,
            messages=[{"role": "system", "content": "시스템"}, {"role": "user", "content": "안녕"}],
        )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tools": [TOOL], "tool_choice": "required"}, "tool_choice"),
    ],
)
def test_forcing_a_model_that_cannot_be_forced_is_refused_by_name(stub, extra, param):
    with serve(stub, models=LLAMA) as server:
        with pytest.raises(openai.BadRequestError) as raised:
            ask(server, LLAMA, **extra)
    assert raised.value.body["param"] == param


def test_a_failing_openai_model_falls_back_to_bedrock(stub):
    stub.add_response("converse", converse_answer("노바가 답합니다"))
    with FakeOpenAI() as upstream:
        upstream.enqueue(Step(status=503))
        server = serve(
            stub,
            openai_fake=upstream,
            openai_base_url=upstream.url,
            openai_api_key="sk-server-" + "k" * 40,
            openai_max_retries=0,
            openai_compat_free_mode=True,
            model_fallbacks=f"gpt-4o-mini={NOVA}",
        )
        with server, capture_logs() as logs:
            answer = ask(server, "gpt-4o-mini")
    assert answer.model == NOVA and answer.choices[0].message.content == "노바가 답합니다"
    fell = [r for r in logs.records() if r.get("fallback_to") == NOVA]
    assert fell and fell[0]["fallback_from"] == "gpt-4o-mini"


@pytest.mark.parametrize("server_pays", [False, True])
@pytest.mark.parametrize(
    ("upstream_error", "answered"), [((429, "insufficient_quota"), 429), ((503, None), 502)]
)
def test_a_fallback_keeps_the_payer_of_the_turn_unless_the_operator_says(
    stub, upstream_error, answered, server_pays
):
    """A caller on its own OpenAI key (no free mode) fell back to Bedrock on the operator's
    account, FREE_MODE_ENABLED=false or not: only MODEL_FALLBACKS_SERVER_PAYS lets it."""
    if server_pays:
        stub.add_response("converse", converse_answer("노바가 답합니다"))
    status, code = upstream_error
    with FakeOpenAI() as upstream:
        upstream.enqueue(Step(status=status, error_code=code))
        server = serve(
            stub,
            openai_fake=upstream,
            openai_base_url=upstream.url,
            openai_max_retries=0,
            free_mode_enabled=False,
            model_fallbacks=f"gpt-4o-mini={NOVA}",
            model_fallbacks_server_pays=server_pays,
        )
        with server:
            own_key = openai.OpenAI(
                base_url=f"{server.url}/v1",
                api_key="sk-caller-own-" + "o" * 40,
                default_headers=KNOWN,
                max_retries=0,
            )
            if server_pays:
                answer = own_key.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "안녕"}]
                )
                usage = httpx.get(f"{server.url}/api/v1/usage", headers=KNOWN).json()
            else:
                with pytest.raises(openai.APIStatusError) as raised:
                    own_key.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "안녕"}]
                    )
    if server_pays:
        assert answer.model == NOVA
        assert [row["api_key_source"] for row in usage["by_model"]] == ["server"]
    else:
        assert raised.value.status_code == answered  # the caller's own failure, as it was
    # without the setting, the Stubber would fail the test on an unexpected call to Bedrock


def test_a_bedrock_model_without_a_price_is_named_at_start_and_refused(stub):
    unpriced = "us.amazon.nova-premier-v1:0"
    with capture_logs() as logs:
        server = serve(stub, models=f"{NOVA},{unpriced}")
    warned = [r for r in logs.records() if r.get("model") == unpriced]
    assert warned and "MODEL_PRICES" in warned[0]["message"]
    with server:
        with pytest.raises(openai.PermissionDeniedError) as raised:
            ask(server, unpriced)
    assert raised.value.body["code"] == "model_not_priced"
    assert raised.value.body["param"] == "model"


def test_a_throttled_bedrock_model_falls_back_to_another(stub):
    for _ in range(3):
        stub.add_client_error("converse", **error("ThrottlingException", "Slow down", 429))
    stub.add_response("converse", converse_answer("클로드가 답합니다"))
    with serve(stub, model_fallbacks=f"{NOVA}={CLAUDE}") as server:
        answer = ask(server, NOVA)
    assert answer.model == CLAUDE and answer.choices[0].message.content == "클로드가 답합니다"


def test_the_callers_own_bad_request_never_falls_back(stub):
    refusal = "temperature must be at most 1"
    stub.add_client_error("converse", **error("ValidationException", refusal, 400))
    with serve(stub, model_fallbacks=f"{NOVA}={CLAUDE}") as server:
        with pytest.raises(openai.BadRequestError):
            ask(server, NOVA, temperature=1.5)
    # the Stubber would fail the test on an unexpected second call (to Claude)
