"""Two local servers (`python -m llm_server`, a process each) sharing one store: a key's rate and
budget hold across them under concurrency, and a revocation made through one stops the other."""

import concurrent.futures
import contextlib

import pytest

from helpers.fake_openai import Step
from helpers.gateway_keys import ADMIN_KEY, admin, chat, code, create_key
from helpers.server_process import ServerProcess
from helpers.stores import dynamodb_table
from helpers.tenants import SERVER_KEY


@pytest.fixture
def servers(kind, moto_endpoint, fake):
    env = {
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": SERVER_KEY,
        "OPENAI_BASE_URL": fake.url,
        "ADMIN_API_KEY": ADMIN_KEY,
        "CACHE_ENABLED": "false",
        "FREE_MODE_REQUESTS_PER_MINUTE": "1000",
        "FREE_MODE_TOKENS_PER_DAY": "1000000000",
        "MAX_CONCURRENT_REQUESTS": "40",
        "MAX_CONCURRENT_PER_CLIENT": "40",
    }
    if kind == "dynamodb":
        table, _ = dynamodb_table(moto_endpoint)
        env.update(STORE="dynamodb", DYNAMODB_TABLE=table, AWS_ENDPOINT_URL=moto_endpoint)
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(ServerProcess(**env))
        second = stack.enter_context(ServerProcess(**env, STORE_PATH=first.store_path))
        yield first, second


def at_once(servers, key: str, count: int, **fields) -> list:
    """`count` chats with `key` at the same time, alternating between the servers."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda s: chat(s, key, **fields), [*servers] * (count // 2)))


def test_a_keys_rpm_holds_across_two_processes(servers, fake):
    key = create_key(servers[0], rpm=3)["key"]
    replies = at_once(servers, key, 20)
    assert sorted(r.status_code for r in replies) == [200] * 3 + [429] * 17
    assert {code(r) for r in replies if r.status_code == 429} == {"key_rate_limited"}
    assert len(fake.seen) == 3


def test_a_keys_budget_holds_across_two_processes(servers, fake):
    # each turn's worst case is about 0.0006 USD (max_tokens 1000 on gpt-4o-mini), and each
    # really uses its 1000 tokens: 0.0075 USD fits a dozen, and 40 unchecked would cost 0.024
    made = create_key(servers[0], monthly_budget_usd=0.0075)
    fake.enqueue(*[Step(usage={"output_tokens": 1000}) for _ in range(40)])
    replies = at_once(servers, made["key"], 40, max_tokens=1000)
    admitted = [r for r in replies if r.status_code == 200]
    assert 12 <= len(admitted) < 40
    assert {code(r) for r in replies if r.status_code != 200} == {"budget_exceeded"}
    shown = admin(servers[1], "GET", f"/keys/{made['id']}").json()
    assert shown["spend_usd"] <= 0.0075 and shown["requests"] == len(admitted)


def test_a_key_revoked_through_one_process_stops_at_once_on_the_other(servers):
    made = create_key(servers[0])
    assert chat(servers[1], made["key"]).status_code == 200
    assert admin(servers[0], "DELETE", f"/keys/{made['id']}").status_code == 200
    refused = chat(servers[1], made["key"])
    assert refused.status_code == 401 and code(refused) == "key_revoked"
