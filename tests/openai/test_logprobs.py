"""Log probabilities (`logprobs`/`top_logprobs`, Responses `include`), on both providers."""

import json
import math

import openresponses_types as ort
import pytest

import openai
from helpers.openai_app import openai_app_server, post_v1
from helpers.openai_spec import validate

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
CALLER_KEY = "sk-logprobs-" + "l" * 40
ASK = [{"role": "user", "content": "서울은 어떤 도시야?"}]
INCLUDE = ["message.output_text.logprobs"]


def consistent(entries, text, top):
    """One entry per token: their bytes make the text; alternatives ranked, the pick among them.

    (A reply cut at its token limit may end in part of a character the text cannot show.)
    """
    joined = bytes(b for entry in entries for b in entry["bytes"])
    assert joined.startswith(text.encode()) and len(joined) - len(text.encode()) < 4
    for entry in entries:
        assert entry["logprob"] <= 0 and len(entry["top_logprobs"]) == top
        ranked = [alternative["logprob"] for alternative in entry["top_logprobs"]]
        assert ranked == sorted(ranked, reverse=True)
    return entries


@pytest.mark.model
def test_the_local_model_reports_each_tokens_logprob_and_alternatives(local_server):
    with openai.OpenAI(base_url=f"{local_server.url}/v1", api_key="EMPTY") as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model=LOCAL, messages=ASK, max_tokens=12, temperature=0, logprobs=True, top_logprobs=3
        )
        chunks = list(
            sdk.chat.completions.create(
                model=LOCAL, messages=ASK, max_tokens=12, temperature=0, logprobs=True, stream=True
            )
        )
        response = sdk.responses.with_raw_response.create(
            model=LOCAL,
            input=ASK,
            max_output_tokens=12,
            temperature=0,
            include=INCLUDE,
            top_logprobs=2,
        )
    body = raw.http_response.json()
    validate(body, "CreateChatCompletionResponse")
    choice = body["choices"][0]
    entries = consistent(choice["logprobs"]["content"], choice["message"]["content"], 3)
    assert len(entries) == body["usage"]["completion_tokens"] == 12
    # greedy decoding picks the likeliest token, so each pick is its first alternative
    assert all(e["top_logprobs"][0]["token"] == e["token"] for e in entries)
    streamed = [c.choices[0].logprobs for c in chunks if c.choices and c.choices[0].logprobs]
    assert [e.logprob for e in streamed[0].content] == pytest.approx(
        [e["logprob"] for e in entries]
    )
    made = response.http_response.json()
    ort.ResponseResource.model_validate_json(json.dumps(made), strict=True)
    validate(made, "Response")
    part = made["output"][0]["content"][0]
    assert made["top_logprobs"] == 2 and consistent(part["logprobs"], part["text"], 2)
    assert all(math.isfinite(e["logprob"]) for e in part["logprobs"])


def test_logprobs_reach_the_responses_api_and_come_back(fake):
    with openai_app_server(fake) as server:
        body = {"model": "gpt-4o-mini", "messages": ASK, "logprobs": True, "top_logprobs": 2}
        chat = post_v1(server, "/chat/completions", body, CALLER_KEY).json()
        refused = post_v1(server, "/chat/completions", {**body, "logprobs": False}, CALLER_KEY)
    sent = fake.seen[0].body
    assert sent["include"] == INCLUDE and sent["top_logprobs"] == 2
    choice = chat["choices"][0]
    consistent(choice["logprobs"]["content"], choice["message"]["content"], 2)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "logprobs"
