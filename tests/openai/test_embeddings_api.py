"""`POST /v1/embeddings` as a caller meets it on the local server: bad input is a 4xx naming its
field before any model runs, the wrong kind of model a 400 naming `model`, and `/v1/models` lists
the embedding models after the chat ones.
"""

import httpx
import pytest

from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app

LOCAL = "SmolLM2-135M-Instruct.Q4_1"
LOCAL_EMBED = f"{LOCAL}-embedding"
TITAN = "amazon.titan-embed-text-v2:0"


def embed(client, **body):
    return client.post("/v1/embeddings", json={"model": LOCAL_EMBED, **body})


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": ""}, "input", "input[0] is empty"),
        ({"input": []}, "input", "input has 0 items"),
        ({"input": ["서울", ""]}, "input", "input[1] is empty"),
        ({"input": [[9906, 1917]]}, "input", "check_embedding_ctx_length=False"),
        ({"input": ["서울", 3]}, "input", "valid string"),
        ({"input": "서울", "dimensions": 256}, "dimensions", "not supported"),
        ({"input": "서울", "dimensions": 0}, "dimensions", "greater than or equal to 1"),
        ({"input": "서울", "input_type": "search_query"}, "input_type", "not supported"),
        ({"input": "서울", "input_type": "poetry"}, "input_type", "search_document"),
        ({"input": "서울", "encoding_format": "int8"}, "encoding_format", "'float' or 'base64'"),
        ({"input": "서울", "temperature": 0}, "temperature", "Unrecognized request argument"),
        ({"input": "서울\x00"}, "input", "NUL"),
    ],
)
def test_bad_input_is_a_400_naming_its_field(client, body, param, words):
    answer = embed(client, **body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"].split(".")[0] == param
    assert words in error["message"]


@pytest.mark.model
def test_an_input_longer_than_the_local_models_context_is_a_400_naming_input(client):
    answer = embed(client, input=["짧다", "토큰 " * 2000])
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "input"


def test_more_inputs_than_embedding_max_inputs_is_a_400_naming_input(local_provider):
    settings = make_settings(embedding_max_inputs=3)
    app = create_app(settings, Services.from_settings(settings, local=local_provider))
    with LiveServer(app) as server:
        answer = httpx.post(
            f"{server.url}/v1/embeddings",
            json={"model": LOCAL_EMBED, "input": ["가", "나", "다", "라"]},
            timeout=30,
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "input"
    assert "input has 4 items" in answer.json()["error"]["message"]


def test_a_chat_model_asked_to_embed_and_an_embedding_model_asked_to_chat_are_400s(client):
    asked_to_embed = client.post("/v1/embeddings", json={"model": LOCAL, "input": "서울"})
    asked_to_chat = client.post(
        "/v1/chat/completions",
        json={"model": LOCAL_EMBED, "messages": [{"role": "user", "content": "안녕"}]},
    )
    for answer, route in ((asked_to_embed, "chat/completions"), (asked_to_chat, "embeddings")):
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert (error["param"], error["code"]) == ("model", "model_not_supported")
        assert route in error["message"]


def test_a_model_this_server_does_not_serve_is_a_404(client):
    for model in (TITAN, "text-embedding-nonexistent"):
        answer = client.post("/v1/embeddings", json={"model": model, "input": "서울"})
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "model_not_found"


def test_the_embedding_models_are_listed_after_the_chat_models(client):
    listed = [(m["id"], m["owned_by"]) for m in client.get("/v1/models").json()["data"]]
    assert listed.index((LOCAL, "llm-server")) < listed.index((LOCAL_EMBED, "llm-server"))
    assert client.get(f"/v1/models/{LOCAL_EMBED}").json()["id"] == LOCAL_EMBED
