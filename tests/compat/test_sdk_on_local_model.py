"""The official `openai` SDK, sync and async, as the client of LLM Server on the local model."""

import asyncio
import json
import time
import warnings

import httpx
import pytest

import openai

pytestmark = pytest.mark.model

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
QUESTION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture
def sdk(local_server):
    # SDKs insist on a key; a bearer that is not an OpenAI key means "no key": the local model.
    with openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0) as client:
        yield client


@pytest.fixture
def async_sdk(local_server):
    return openai.AsyncOpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)


@pytest.fixture(autouse=True)
def no_warnings():
    """The SDK must parse our objects into its types without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("default", ResourceWarning)
        yield


def test_models_list_names_the_local_model(sdk):
    ids = [model.id for model in sdk.models.list()]
    assert LOCAL in ids and "gpt-4o-mini" in ids


def test_chat_completion_whole_and_streamed_agree(sdk):
    whole = sdk.chat.completions.create(
        model=LOCAL, messages=QUESTION, max_tokens=12, temperature=0
    )
    assert whole.object == "chat.completion" and whole.model == LOCAL
    text = whole.choices[0].message.content
    assert text.strip() and whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    chunks = list(
        sdk.chat.completions.create(
            model=LOCAL,
            messages=QUESTION,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == whole.usage.model_dump()


def test_asked_as_local_the_stream_names_the_model_as_the_whole_reply_does(sdk):
    """Streamed chunks named the model as the caller wrote it (`local`), the whole reply the
    model that answered: one name on both."""
    request = dict(model="local", messages=QUESTION, max_tokens=4, temperature=0)
    whole = sdk.chat.completions.create(**request)
    chunks = list(sdk.chat.completions.create(stream=True, **request))
    assert whole.model == LOCAL
    assert {chunk.model for chunk in chunks} == {LOCAL}


def test_responses_whole_streamed_and_with_the_stream_helper(sdk):
    whole = sdk.responses.create(
        model=LOCAL,
        input="Name a colour.",
        instructions="Answer in one word.",
        max_output_tokens=8,
        temperature=0,
    )
    assert whole.status in ("completed", "incomplete") and whole.output_text.strip()
    assert whole.usage.input_tokens > 0 and whole.usage.output_tokens > 0
    events = list(
        sdk.responses.create(
            model=LOCAL,
            input="Name a colour.",
            instructions="Answer in one word.",
            max_output_tokens=8,
            temperature=0,
            stream=True,
        )
    )
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[0].type == "response.created"
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert deltas == events[-1].response.output_text == whole.output_text
    with sdk.responses.stream(
        model=LOCAL,
        input=[{"role": "user", "content": "Name a colour."}],
        instructions="Answer in one word.",
        max_output_tokens=8,
        temperature=0,
    ) as stream:
        final = stream.get_final_response()
    assert final.output_text == whole.output_text


def test_korean_through_the_sdk(sdk):
    reply = sdk.chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "안녕하세요! 한국어로 인사해 주세요."}],
        max_tokens=16,
        temperature=0,
    )
    assert reply.choices[0].message.content.strip()


def test_async_client_chat_and_responses(async_sdk):
    async def run():
        chat = await async_sdk.chat.completions.create(
            model=LOCAL, messages=QUESTION, max_tokens=6, temperature=0
        )
        stream = await async_sdk.chat.completions.create(
            model=LOCAL, messages=QUESTION, max_tokens=6, temperature=0, stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        response = await async_sdk.responses.create(model=LOCAL, input="Hi", max_output_tokens=4)
        await async_sdk.close()
        return chat, "".join(pieces), response

    chat, streamed, response = asyncio.run(run())
    assert chat.choices[0].message.content == streamed
    assert response.output_text


@pytest.mark.parametrize(
    ("kwargs", "error_class", "param"),
    [
        ({"temperature": 3}, openai.BadRequestError, "temperature"),
        ({"n": 2}, openai.BadRequestError, "n"),
        ({"messages": []}, openai.BadRequestError, "messages"),
        (
            {"messages": [{"role": "system", "content": "only rules"}]},
            openai.BadRequestError,
            "messages",
        ),
        ({"max_tokens": 100000}, openai.BadRequestError, "max_tokens"),
    ],
)
def test_bad_parameters_raise_the_sdks_bad_request_error(sdk, kwargs, error_class, param):
    arguments = {"model": LOCAL, "messages": QUESTION, "max_tokens": 4, **kwargs}
    with pytest.raises(error_class) as caught:
        sdk.chat.completions.create(**arguments)
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == param
    assert caught.value.body["type"] == "invalid_request_error"


def test_a_malformed_openai_key_raises_authentication_error(local_server):
    sdk = openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="sk-short", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=4)
    assert caught.value.body["param"] == "Authorization"
    assert "sk-short" not in str(caught.value)


def test_unknown_route_raises_not_found(sdk):
    with pytest.raises(openai.NotFoundError):
        sdk.images.generate(model=LOCAL, prompt="x")


@pytest.mark.parametrize("path", ["compact", "resp_x/archive"])
def test_a_responses_endpoint_this_server_has_not_is_a_404_not_a_405(local_server, path):
    """`GET /v1/responses/{id}` made `POST /v1/responses/compact` a 405."""
    reply = httpx.post(
        f"{local_server.url}/v1/responses/{path}", json={"model": "local", "input": "x"}
    )
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"


def test_a_client_that_disconnects_mid_stream_frees_the_model(local_server, local_provider):
    body = {
        "model": LOCAL,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
        "max_tokens": 1500,
        "stream": True,
    }
    with httpx.Client(base_url=local_server.url, timeout=60) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as stream:
            deltas = (
                json.loads(line[6:])["choices"][0]["delta"].get("content")
                for line in stream.iter_lines()
                if line.startswith("data: {")
            )
            assert next(text for text in deltas if text)
            before = local_provider.status()["generated_tokens"]
        # The stream was abandoned after its first token: the generation stops there, not
        # ~1500 tokens later (what happened, not how fast a loaded machine made it happen).
        deadline = time.monotonic() + 60
        while local_provider.status()["generating"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not local_provider.status()["generating"]
        assert local_provider.status()["generated_tokens"] - before < 750  # of 1500
        reply = http.post("/api/v1/chat", json={"user_message": "Hi", "max_tokens": 4})
        assert reply.status_code == 200
        assert http.get("/api/v1/system/info").json()["requests_in_progress"] == 0
