"""The legacy Completions API, through the official SDK's `completions.create`."""

import pytest

import openai
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.openai_spec import validate
from helpers.settings import make_settings
from llm_server.app import Services, create_app

CALLER_KEY = "sk-legacy-" + "c" * 40


@pytest.fixture
def sdk(fake):
    settings = make_settings(openai_base_url=fake.url, llm_provider="openai")
    local = FailingProvider(AssertionError("no local model here"), name="local")
    with LiveServer(create_app(settings, Services.from_settings(settings, local=local))) as live:
        yield openai.OpenAI(base_url=f"{live.url}/v1", api_key=CALLER_KEY, max_retries=0)


def test_a_prompt_gets_a_text_completion(sdk, fake):
    raw = sdk.completions.with_raw_response.create(
        model="gpt-4o-mini", prompt="서울은", max_tokens=8
    )
    validate(raw.http_response.json(), "CreateCompletionResponse")
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "echo: 서울은"
    assert completion.usage.total_tokens > 0
    assert fake.seen[0].body["input"] == [{"role": "user", "content": "서울은"}]


def test_a_streamed_completion_keeps_one_id_and_ends_with_usage(sdk):
    chunks = list(
        sdk.completions.create(
            model="gpt-4o-mini",
            prompt="Hi",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: Hi"
    assert len({(c.id, c.model, c.created) for c in chunks}) == 1
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"suffix": "x"}, "suffix"), ({"echo": True}, "echo"), ({"best_of": 3}, "best_of")],
)
def test_unsupported_legacy_parameters_are_refused_by_name(sdk, extra, param):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.completions.create(model="gpt-4o-mini", prompt="Hi", **extra)
    assert caught.value.body["param"] == param
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.completions.create(model="gpt-4o-mini", prompt=["one", "two"])
    assert caught.value.body["param"] == "prompt"
