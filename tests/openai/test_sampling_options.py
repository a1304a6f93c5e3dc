"""Sampling options and structured output: honoured by the provider that can, refused by name."""

import json

import jsonschema
import pytest
from pydantic import BaseModel

import openai
from helpers.openai_app import openai_app_server, post_v1

CALLER_KEY = "sk-options-" + "c" * 40
QUESTION = [{"role": "user", "content": "Name a city in Korea and its population."}]
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


@pytest.fixture
def openai_server(fake):
    with openai_app_server(fake) as live:
        yield live


def post(server, path, body, key=CALLER_KEY):
    return post_v1(server, path, body, key)


def test_the_openai_provider_passes_top_p_and_the_output_format(openai_server, fake):
    schema_format = {"name": "city", "schema": CITY_SCHEMA, "strict": True}
    answer = post(
        openai_server,
        "/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": QUESTION,
            "top_p": 0.5,
            "response_format": {"type": "json_schema", "json_schema": schema_format},
        },
    )
    assert answer.status_code == 200
    sent = fake.seen[-1].body
    assert sent["top_p"] == 0.5
    assert sent["text"] == {"format": {"type": "json_schema", **schema_format}}
    response = post(
        openai_server,
        "/responses",
        {"model": "gpt-4o-mini", "input": "hi", "text": {"format": {"type": "json_object"}}},
    )
    assert fake.seen[-1].body["text"] == {"format": {"type": "json_object"}}
    assert response.json()["text"] == {"format": {"type": "json_object"}}


@pytest.mark.parametrize(
    ("option", "value"), [("stop", ["\n"]), ("seed", 7), ("presence_penalty", 1.5)]
)
def test_options_the_responses_api_lacks_are_refused_by_name(openai_server, fake, option, value):
    body = {"model": "gpt-4o-mini", "messages": QUESTION, option: value}
    answer = post(openai_server, "/chat/completions", body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == option
    assert "openai provider" in answer.json()["error"]["message"]
    assert fake.seen == []


class City(BaseModel):
    city: str
    population: int


@pytest.mark.model
def test_structured_output_on_the_local_model_parses_with_the_sdk(local_server):
    sdk = openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)
    parsed = sdk.chat.completions.parse(
        model="local", messages=QUESTION, response_format=City, max_tokens=60, temperature=0
    )
    city = parsed.choices[0].message.parsed
    assert isinstance(city, City) and city.city
    raw = json.loads(parsed.choices[0].message.content)
    jsonschema.validate(raw, City.model_json_schema())


@pytest.mark.model
def test_json_object_on_the_local_model_is_json_or_a_cut_prefix(local_server):
    sdk = openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)
    reply = sdk.chat.completions.create(
        model="local",
        messages=QUESTION,
        response_format={"type": "json_object"},
        max_tokens=48,
        temperature=0,
    )
    text = reply.choices[0].message.content.strip()
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:
        assert reply.choices[0].finish_reason == "length" and text.startswith("{")


@pytest.mark.model
def test_seed_stop_and_penalties_reach_llama_cpp(local_server):
    sdk = openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0)
    ask = {"model": "local", "messages": QUESTION, "max_tokens": 24, "temperature": 1.2}
    other = [{"role": "user", "content": "Say hello."}]
    sdk.chat.completions.create(**{**ask, "messages": other})  # the cache holds another prompt
    first = sdk.chat.completions.create(**ask, seed=11).choices[0].message.content
    again = sdk.chat.completions.create(**ask, seed=11).choices[0].message.content
    assert first == again  # the same seed and request give the same text, cached prompt or not
    stopped = sdk.chat.completions.create(
        **{**ask, "temperature": 0, "max_tokens": 60}, stop=[" "], presence_penalty=0.5
    ).choices[0]
    assert " " not in stopped.message.content.strip() and stopped.finish_reason == "stop"


@pytest.mark.model
def test_the_native_api_reports_the_format_it_produced(client):
    reply = client.post(
        "/api/v1/chat",
        json={
            "user_message": "서울의 인구를 JSON으로 알려 주세요.",
            "response_format": {"type": "json_schema", "json_schema": {"schema": CITY_SCHEMA}},
            "max_tokens": 60,
            "temperature": 0,
        },
    ).json()
    assert reply["output_format"] == "json_schema"
    jsonschema.validate(json.loads(reply["response_text"]), CITY_SCHEMA)
    bad = client.post("/api/v1/chat", json={"user_message": "hi", "response_format": "yaml"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "response_format"
