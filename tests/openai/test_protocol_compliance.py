"""The `/v1` objects against OpenAI's published OpenAPI document and the Open Responses types."""

import json

import openresponses_types as ort
import pytest

import openai
from helpers.openai_app import openai_app_server, post_v1
from helpers.openai_spec import validate

CALLER_KEY = "sk-compliance-" + "c" * 40
STREAMING_EVENTS = {
    "response.created": ort.ResponseCreatedStreamingEvent,
    "response.in_progress": ort.ResponseInProgressStreamingEvent,
    "response.output_item.added": ort.ResponseOutputItemAddedStreamingEvent,
    "response.content_part.added": ort.ResponseContentPartAddedStreamingEvent,
    "response.output_text.delta": ort.ResponseOutputTextDeltaStreamingEvent,
    "response.output_text.done": ort.ResponseOutputTextDoneStreamingEvent,
    "response.content_part.done": ort.ResponseContentPartDoneStreamingEvent,
    "response.output_item.done": ort.ResponseOutputItemDoneStreamingEvent,
    "response.completed": ort.ResponseCompletedStreamingEvent,
    "response.incomplete": ort.ResponseIncompleteStreamingEvent,
}


@pytest.fixture
def server(fake):
    with openai_app_server(fake) as live:
        yield live


def post(server, path, body, key=CALLER_KEY):
    return post_v1(server, path, body, key)


def events(text):
    return [json.loads(block.split("data: ", 1)[1]) for block in text.strip().split("\n\n")]


def test_a_whole_response_is_to_both_specs(server):
    body = post(
        server, "/responses", {"model": "gpt-4o-mini", "input": "안녕", "user": "u-1"}
    ).json()
    validate(body, "Response")
    ort.ResponseResource.model_validate_json(json.dumps(body), strict=True)
    assert body["output"][0]["content"][0]["logprobs"] == []
    assert body["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert body["text"] == {"format": {"type": "text"}} and body["store"] is True


def test_a_streamed_response_is_to_both_specs(server):
    answer = post(server, "/responses", {"model": "gpt-4o-mini", "input": "hi", "stream": True})
    streamed = events(answer.text)
    assert [e["sequence_number"] for e in streamed] == list(range(len(streamed)))
    for event in streamed:
        STREAMING_EVENTS[event["type"]].model_validate_json(json.dumps(event), strict=True)
        if event["type"] in ("response.created", "response.in_progress"):
            # The published document types `usage` as an object; Open Responses (and OpenAI's
            # own streams) send null before there is any: only that difference is excused.
            event = {**event, "response": {**event["response"], "usage": None}}
            del event["response"]["usage"]
        validate(event, "ResponseStreamEvent")
    assert streamed[-1]["type"] == "response.completed"


def test_a_chat_stream_keeps_one_id_model_and_created(server):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    body["stream_options"] = {"include_usage": True}
    chunks = [
        e for e in events(post(server, "/chat/completions", body).text[: -len("data: [DONE]\n\n")])
    ]
    assert len(chunks) >= 4
    assert {(c["id"], c["model"], c["created"]) for c in chunks} == {
        (chunks[0]["id"], "gpt-4o-mini", chunks[0]["created"])
    }
    for chunk in chunks:
        validate(chunk, "CreateChatCompletionStreamResponse")


@pytest.mark.parametrize(
    ("path", "extra", "param"),
    [
        ("/chat/completions", {"logit_bias": {"50256": -100}}, "logit_bias"),
        ("/chat/completions", {"response_format": {"type": "yaml"}}, "response_format"),
        ("/chat/completions", {"stop": ["\n"]}, "stop"),  # the OpenAI provider lacks them
        ("/chat/completions", {"seed": 7}, "seed"),
        ("/chat/completions", {"top_logprobs": 2}, "logprobs"),  # top_logprobs needs logprobs
        ("/chat/completions", {"presence_penalty": 5}, "presence_penalty"),
        ("/chat/completions", {"made_up_option": 1}, "made_up_option"),
        ("/responses", {"text": {"format": {"type": "yaml"}}}, "text.format"),
        ("/responses", {"include": ["file_search_call.results"]}, "include.0"),
        ("/chat/completions", {"functions": [{"name": "f"}]}, "functions"),  # deprecated
    ],
)
def test_a_parameter_not_honoured_is_refused_by_name(server, fake, path, extra, param):
    body = {"model": "gpt-4o-mini", **extra}
    if path == "/responses":
        body["input"] = "hi"
    else:
        body["messages"] = [{"role": "user", "content": "hi"}]
    answer = post(server, path, body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param
    assert fake.seen == []


def test_values_that_change_nothing_are_accepted(server):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    body |= {"presence_penalty": 0, "top_p": 1, "user": "u-1", "logprobs": False, "tools": []}
    assert post(server, "/chat/completions", body).status_code == 200


@pytest.mark.model
def test_a_reply_cut_short_is_incomplete_to_the_item(local_server):
    sdk = openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)
    response = sdk.responses.create(
        model="local", input="Tell me about Seoul.", max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.output[0].status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


def test_an_unknown_model_is_404_and_models_can_be_retrieved(local_server):
    sdk = openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)
    listed = [model.id for model in sdk.models.list()]
    assert sdk.models.retrieve(listed[0]).id == listed[0]
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.models.retrieve("no-such-model")
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert unknown.value.body["param"] == "model"
