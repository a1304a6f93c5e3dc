"""The response cache: hits and misses over HTTP, what is cached, and for whom."""

import httpx
import pytest

from helpers.fake_openai import Step
from helpers.fakes import FailingProvider
from helpers.lambda_events import emf_blobs, value
from helpers.live_server import LiveServer
from helpers.settings import make_settings
from llm_server.app import Services, create_app
from llm_server.core.response_cache import ResponseCache
from llm_server.core.server_key import ServerKeyStore
from llm_server.values import ChatMessage, Generation, GenerationRequest

KEY_A = "sk-cache-a-" + "a" * 40
KEY_B = "sk-cache-b-" + "b" * 40
SERVER_KEY = "sk-cache-s-" + "s" * 40


@pytest.fixture
def server(fake):
    settings = make_settings(
        openai_base_url=fake.url,
        cache_enabled=True,
        openai_api_key=SERVER_KEY,
        sessions_enabled=False,
        openai_max_retries=0,
    )
    local = FailingProvider(AssertionError("no local model here"), name="local")
    service = Services.from_settings(settings, local=local, server_key=ServerKeyStore(settings))
    with LiveServer(create_app(settings, service)) as live:
        yield live


def ask(server, **fields):
    body = {"user_message": "What is 2+2?", "temperature": 0, "openai_api_key": KEY_A, **fields}
    headers = {"X-Api-Key": "client-1"}  # free mode needs a client credential
    return httpx.post(f"{server.url}/api/v1/chat", json=body, headers=headers, timeout=30)


def test_a_repeated_deterministic_request_is_served_from_the_cache(fake, server, capsys):
    first, second = ask(server), ask(server)
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert second.json()["response_text"] == first.json()["response_text"]
    assert second.json()["output_tokens"] == first.json()["output_tokens"]
    assert len(fake.seen) == 1
    hits = [blob for blob in emf_blobs(capsys.readouterr().out) if "CacheHits" in blob]
    assert [value(blob, "CacheHits") for blob in hits] == [1]


def test_sampled_requests_are_not_cached(fake, server):
    first, second = ask(server, temperature=0.7), ask(server, temperature=0.7)
    assert "x-cache" not in first.headers and "x-cache" not in second.headers
    assert len(fake.seen) == 2


def test_errors_are_never_cached(fake, server):
    fake.enqueue(Step(status=500))
    assert ask(server).status_code == 502
    retry = ask(server)
    assert retry.status_code == 200 and retry.headers["x-cache"] == "MISS"


def test_every_input_and_every_payer_has_its_own_entry(fake, server):
    ask(server)
    variants = [
        {"openai_api_key": KEY_B},  # another caller's key
        {"openai_api_key": "", "free_mode": True},  # the server's key
        {"user_message": "What is 3+3?"},
        {"max_tokens": 5},
        {"model": "gpt-4.1-mini"},
        {"instructions": "Answer in Korean."},
    ]
    for fields in variants:
        assert ask(server, **fields).headers["x-cache"] == "MISS", fields
    assert len(fake.seen) == 1 + len(variants)


def test_the_cache_is_an_lru_with_a_ttl():
    now = [0.0]
    cache = ResponseCache(max_entries=2, ttl_seconds=10, clock=lambda: now[0])
    reply = Generation(text="4", model="m", input_tokens=1, output_tokens=1)
    for key in ("a", "b"):
        cache.put(key, reply)
    assert cache.get("a") is reply  # "a" is now the most recent
    cache.put("c", reply)
    assert cache.get("b") is None and len(cache) == 2
    now[0] = 11
    assert cache.get("a") is None


def test_the_key_never_contains_the_api_key():
    request = GenerationRequest(
        instructions="",
        messages=(ChatMessage("user", "hi"),),
        model="m",
        temperature=0,
        max_tokens=5,
        api_key=None,
        key_source="none",
    )
    key = ResponseCache.key_for("openai", request, "anonymous")
    assert len(key) == 64 and KEY_A not in key


def test_warm_containers_share_answers_through_dynamodb(fake, moto_endpoint):
    from helpers.stores import dynamodb_table
    from llm_server.core.response_cache import ResponseCache
    from llm_server.stores.shared_cache import DynamoDBSharedCache

    table, dynamodb = dynamodb_table(moto_endpoint)

    def container():
        settings = make_settings(
            openai_base_url=fake.url,
            cache_enabled=True,
            sessions_enabled=False,
            store="dynamodb",
            dynamodb_table=table,
            cache_shared=True,
        )
        shared = DynamoDBSharedCache(table, settings.cache_ttl_seconds, dynamodb)
        service = Services.from_settings(
            settings,
            local=FailingProvider(AssertionError("no local model here"), name="local"),
            cache=ResponseCache(100, 300, shared=shared),
        )
        return LiveServer(create_app(settings, service))

    with container() as one, container() as two:
        first = ask(one)
        second = ask(two)
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert second.json()["response_text"] == first.json()["response_text"]
    assert second.json()["created_at"] == first.json()["created_at"]
    assert len(fake.seen) == 1
