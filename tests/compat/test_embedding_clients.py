"""The clients of RAG stacks pointed at LLM Server's `/v1/embeddings`: the `openai` SDK (float and
base64), LangChain's `OpenAIEmbeddings` and LlamaIndex's `OpenAIEmbedding`.

On the local model (llama.cpp, the model the project ships) and through to an OpenAI stand-in
that embeds (each text's vector made from its SHA-256, so what arrives can be checked exactly).
"""

import math

import httpx
import pytest
from langchain_openai import OpenAIEmbeddings
from llama_index.embeddings.openai import OpenAIEmbedding

import openai
from helpers.fake_openai import fake_vector
from helpers.fakes import FailingProvider
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app

LOCAL_EMBED = "SmolLM2-135M-Instruct.Q4_1-embedding"
CALLER_KEY = "sk-embeddings-" + "e" * 40
DOCS = ["서울은 한국의 수도이다.", "The cat sat on the mat.", "부산 해운대 해수욕장"]


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def sdk(server, key="EMPTY"):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def through_to_openai(fake, **overrides):
    settings = make_settings(openai_base_url=fake.url, llm_provider="openai", **overrides)
    local = FailingProvider(AssertionError("no local model here"), name="local")
    return LiveServer(create_app(settings, Services.from_settings(settings, local=local)))


@pytest.mark.model
def test_the_sdk_gets_the_same_vectors_as_floats_and_as_base64_from_the_local_model(
    local_server,
):
    with sdk(local_server) as client:
        floats = client.embeddings.create(model=LOCAL_EMBED, input=DOCS, encoding_format="float")
        packed = client.embeddings.create(model=LOCAL_EMBED, input=DOCS)  # the SDK's base64
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert [d.embedding for d in floats.data] == [d.embedding for d in packed.data]
    assert len({len(d.embedding) for d in floats.data}) == 1 and len(floats.data[0].embedding) > 8
    assert floats.model == LOCAL_EMBED
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > len(DOCS)


@pytest.mark.model
def test_the_same_text_gets_the_same_vector_whatever_the_request_holds(local_server):
    with sdk(local_server) as client:
        alone = client.embeddings.create(model=LOCAL_EMBED, input=DOCS[0]).data[0].embedding
        batch = client.embeddings.create(model=LOCAL_EMBED, input=DOCS[::-1] + DOCS[:1])
    assert batch.data[2].embedding == alone == batch.data[3].embedding
    assert batch.data[0].embedding != alone


@pytest.mark.model
def test_langchain_embeds_documents_and_a_query_on_the_local_model(local_server):
    embeddings = OpenAIEmbeddings(
        model=LOCAL_EMBED,
        base_url=f"{local_server.url}/v1",
        api_key="EMPTY",
        check_embedding_ctx_length=False,  # text, not OpenAI's token arrays
        max_retries=0,
    )
    documents = embeddings.embed_documents(DOCS)
    query = embeddings.embed_query(DOCS[1])
    assert len(documents) == 3 and documents[1] == pytest.approx(query, abs=1e-6)
    # the English sentence is nearer itself than the Korean ones are
    assert cosine(query, documents[1]) > max(
        cosine(query, documents[0]), cosine(query, documents[2])
    )


@pytest.mark.model
def test_llamaindex_embeds_on_the_local_model(local_server):
    embedding = OpenAIEmbedding(
        model_name=LOCAL_EMBED, api_base=f"{local_server.url}/v1", api_key="EMPTY", max_retries=0
    )
    vectors = embedding.get_text_embedding_batch(DOCS)
    query = embedding.get_query_embedding(DOCS[2])
    assert len(vectors) == 3 and vectors[2] == pytest.approx(query, abs=1e-6)


@pytest.mark.model
def test_token_arrays_are_refused_by_name_on_the_local_model(local_server):
    with sdk(local_server) as client, pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=LOCAL_EMBED, input=[[9906, 1917]])
    assert refused.value.body["param"] == "input"
    assert "check_embedding_ctx_length=False" in refused.value.body["message"]


def test_the_sdk_gets_openais_vectors_as_floats_and_as_base64_on_the_callers_key(fake):
    with through_to_openai(fake) as server, sdk(server, CALLER_KEY) as client:
        floats = client.embeddings.create(
            model="text-embedding-3-small", input=DOCS, encoding_format="float", user="u-1"
        )
        packed = client.embeddings.create(model="text-embedding-3-small", input=DOCS[0])
        shorter = client.embeddings.create(
            model="text-embedding-3-large", input=DOCS[1], dimensions=8
        )
    for item, text in zip(floats.data, DOCS, strict=True):
        assert item.embedding == list(fake_vector(text, 16))
    assert packed.data[0].embedding == floats.data[0].embedding
    assert shorter.data[0].embedding == list(fake_vector(DOCS[1], 8))
    assert floats.usage.prompt_tokens == sum(len(text.split()) for text in DOCS)
    sent = [seen.body for seen in fake.seen]
    assert [body["input"] for body in sent] == [DOCS, [DOCS[0]], [DOCS[1]]]
    assert sent[0]["user"] == "u-1" and sent[2]["dimensions"] == 8
    assert {seen.headers["authorization"] for seen in fake.seen} == {f"Bearer {CALLER_KEY}"}


def test_token_arrays_reach_openai_as_they_were_sent(fake):
    with through_to_openai(fake) as server, sdk(server, CALLER_KEY) as client:
        made = client.embeddings.create(
            model="text-embedding-3-small", input=[[9906, 1917], [15339]], encoding_format="float"
        )
    assert fake.seen[0].body["input"] == [[9906, 1917], [15339]]
    assert made.data[1].embedding == list(fake_vector("[15339]", 16))
    assert made.usage.prompt_tokens == 3


def test_langchain_and_llamaindex_embed_through_to_openai(fake):
    with through_to_openai(fake) as server:
        langchain = OpenAIEmbeddings(
            model="text-embedding-3-small",
            base_url=f"{server.url}/v1",
            api_key=CALLER_KEY,
            check_embedding_ctx_length=False,
            max_retries=0,
        )
        llamaindex = OpenAIEmbedding(
            model="text-embedding-3-small", api_base=f"{server.url}/v1", api_key=CALLER_KEY
        )
        assert langchain.embed_documents(DOCS)[2] == pytest.approx(list(fake_vector(DOCS[2], 16)))
        assert llamaindex.get_query_embedding(DOCS[0]) == pytest.approx(
            list(fake_vector(DOCS[0], 16))
        )


def test_without_a_key_openais_models_are_a_401_and_in_free_mode_the_servers_key_pays(fake):
    body = {"model": "text-embedding-3-small", "input": "서울"}
    with through_to_openai(fake) as server:
        refused = httpx.post(f"{server.url}/v1/embeddings", json=body, timeout=30)
    server_key = "sk-server-" + "s" * 40
    free = {"openai_compat_free_mode": True, "openai_api_key": server_key}
    with through_to_openai(fake, **free) as server:
        anonymous = httpx.post(f"{server.url}/v1/embeddings", json=body, timeout=30)
        known = httpx.post(
            f"{server.url}/v1/embeddings", json=body, headers={"X-Api-Key": "client-1"}, timeout=30
        )
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "missing_api_key"
    assert anonymous.status_code == 401
    assert known.status_code == 200, known.text
    assert fake.seen[-1].headers["authorization"] == f"Bearer {server_key}"


@pytest.mark.model
def test_the_local_vectors_tell_english_subjects_apart_as_the_readme_says(local_server):
    """What docs/embeddings.md promises: an English paraphrase nearer than another subject."""
    texts = ["The cat sits on the mat.", "A kitten is resting on a rug.", "Stock markets fell."]
    with sdk(local_server) as client:
        made = client.embeddings.create(model=LOCAL_EMBED, input=texts, encoding_format="float")
    cat, kitten, stocks = (item.embedding for item in made.data)
    assert cosine(cat, kitten) > cosine(cat, stocks)
    assert sum(x * x for x in cat) == pytest.approx(1.0, abs=1e-4)  # normalised
