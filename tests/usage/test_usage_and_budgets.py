"""Spend per tenant: what `GET /api/v1/usage` reports is the price sheet's cost of the usage the
provider reported, to the token; budgets hold under concurrency; dropped streams pay what they sent.

Through the real HTTP API, on the OpenAI stand-in (the server's key, free mode) and on Bedrock
(boto3's client under Stubber), on both stores.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.stub import Stubber

import llm_server
from helpers.fake_openai import Step
from helpers.live_server import LiveServer
from helpers.logs import capture_logs
from helpers.tenants import post_chat, tenant_app
from llm_server.providers.bedrock.provider import BedrockProvider

FREE = {"free_mode": True}
PER_MILLION = Decimal(1_000_000)
NOVA = "us.amazon.nova-lite-v1:0"


def usage_of(server, client="client-1", **params) -> httpx.Response:
    headers = {"X-Api-Key": client} if client else {}
    return httpx.get(f"{server.url}/api/v1/usage", params=params, headers=headers, timeout=30)


def dollars(tokens: int, per_million: str) -> Decimal:
    return Decimal(tokens) * Decimal(per_million) / PER_MILLION


@pytest.mark.parametrize("flush", [0, 60], ids=["written-before-answering", "deferred"])
def test_openai_usage_with_cached_tokens_is_priced_to_the_token(kind, moto_endpoint, fake, flush):
    """Deferred (the long-lived server's way), a read of the ledger writes what is pending."""
    app, _ = tenant_app(
        kind, moto_endpoint, fake, free_mode_tokens_per_day=10**9, usage_flush_seconds=flush
    )
    cached = {"input_tokens": 126, "input_tokens_details": {"cached_tokens": 30}}
    fake.enqueue(Step(usage=cached), Step(usage=cached), Step(usage=cached))
    with LiveServer(app) as server:
        replies = [post_chat(server, user_message="서울 날씨는?", **FREE) for _ in range(3)]
        own = usage_of(server).json()
        other = usage_of(server, client="client-2").json()
        anonymous = usage_of(server, client=None)
    outputs = sum(r.json()["output_tokens"] for r in replies)
    (row,) = own["by_model"]
    assert (row["model"], row["provider"], row["api_key_source"]) == (
        "gpt-4o-mini-2024-07-18",
        "openai",
        "server",
    )
    assert (row["requests"], row["input_tokens"], row["cached_input_tokens"]) == (3, 378, 90)
    assert row["output_tokens"] == outputs
    # gpt-4o-mini: 0.15 input, 0.075 cached input, 0.60 output (USD per 1M tokens)
    expected = dollars(288, "0.15") + dollars(90, "0.075") + dollars(outputs, "0.6")
    assert abs(Decimal(str(row["cost_usd"])) - expected) < Decimal("1e-9")
    assert abs(Decimal(str(own["cost_usd"])) - expected) < Decimal("1e-9")
    assert other["by_model"] == [] and other["cost_usd"] == 0
    assert anonymous.status_code == 401


def test_bedrock_usage_with_cache_reads_and_writes_is_priced_to_the_token(kind, moto_endpoint):
    client = boto3.client(
        "bedrock-runtime",
        region_name="ap-northeast-2",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    app, _ = tenant_app(
        kind,
        moto_endpoint,
        None,
        bedrock_models=NOVA,
        bedrock=BedrockProvider([NOVA], client=client),
    )
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "맑음"}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 1000,
            "outputTokens": 200,
            "totalTokens": 3200,
            "cacheReadInputTokens": 1500,
            "cacheWriteInputTokens": 500,
        },
        "metrics": {"latencyMs": 9},
    }
    with Stubber(client) as stub, LiveServer(app) as server:
        stub.add_response("converse", answer)
        reply = post_chat(server, user_message="날씨?", model=NOVA)
        own = usage_of(server).json()
    assert reply.status_code == 200, reply.text
    (row,) = own["by_model"]
    assert (row["model"], row["provider"], row["api_key_source"]) == (NOVA, "bedrock", "server")
    assert (row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"]) == (
        3000,
        1500,
        500,
    )
    # Nova Lite: 0.06 input, 0.015 cache read, 0 cache write, 0.24 output (USD per 1M tokens)
    expected = dollars(1000, "0.06") + dollars(1500, "0.015") + dollars(200, "0.24")
    assert abs(Decimal(str(own["cost_usd"])) - expected) < Decimal("1e-9")


def test_a_model_without_a_price_is_refused_on_the_servers_key_and_served_on_the_callers(
    kind, moto_endpoint, fake
):
    """Unpriced, it reserved nothing: 60 turns at max_tokens 4096 ran on the server's key."""
    app, _ = tenant_app(kind, moto_endpoint, fake, tenant_monthly_budget_usd=5.0)
    with LiveServer(app) as server:
        refused = post_chat(server, model="gpt-unpriced", max_tokens=4096, **FREE)
        own_key = post_chat(
            server, model="gpt-unpriced", openai_api_key="sk-tenant-own-" + "o" * 40
        )
        own = usage_of(server).json()
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_priced", "model")
    assert "MODEL_PRICES" in error["message"]
    assert own_key.status_code == 200 and len(fake.seen) == 1  # only the caller's own key went
    (row,) = own["by_model"]
    assert row["api_key_source"] == "user" and row["cost_usd"] is None and row["input_tokens"] > 0


def test_the_operators_rule_prices_every_unlisted_model_and_its_budget_holds(
    kind, moto_endpoint, fake
):
    prices = json.dumps({"*": {"input": 150, "output": 600}})
    app, _ = tenant_app(
        kind, moto_endpoint, fake, model_prices=prices, tenant_monthly_budget_usd=1.0
    )
    with LiveServer(app) as server:
        small = post_chat(server, model="gpt-unpriced", max_tokens=100, **FREE)
        large = post_chat(server, model="gpt-unpriced", max_tokens=4096, **FREE)
        (row,) = usage_of(server).json()["by_model"]
    assert small.status_code == 200
    expected = dollars(small.json()["input_tokens"], "150") + dollars(
        small.json()["output_tokens"], "600"
    )
    assert abs(Decimal(str(row["cost_usd"])) - expected) < Decimal("1e-9")
    # 4096 tokens at 600 USD per 1M is 2.46 USD: more than the budget, so never started
    assert large.status_code == 429 and large.json()["error"]["code"] == "budget_exceeded"


def test_sixty_o1_pro_turns_spend_at_most_the_budget(kind, moto_endpoint, fake):
    """The red team's run: o1-pro at max_tokens 4096, 60 times, with a 5 USD budget."""
    app, _ = tenant_app(
        kind,
        moto_endpoint,
        fake,
        tenant_monthly_budget_usd=5.0,
        free_mode_requests_per_minute=1000,
        free_mode_tokens_per_day=10**9,
    )
    fake.enqueue(*[Step(usage={"output_tokens": 4096}) for _ in range(60)])
    with LiveServer(app) as server:
        replies = [post_chat(server, model="o1-pro", max_tokens=4096, **FREE) for _ in range(60)]
        own = usage_of(server).json()
    answered = sum(r.status_code == 200 for r in replies)
    assert 1 <= answered <= 2  # 4096 tokens at 600 USD per 1M: 2.46 USD a turn at most
    assert {r.json()["error"]["code"] for r in replies if r.status_code != 200} == {
        "budget_exceeded"
    }
    assert 0 < own["cost_usd"] <= 5.0


def png_of(width: int, height: int) -> str:
    """A data URL whose PNG header says `width` x `height` (nobody here decodes the pixels)."""
    import base64
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
    png += struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 32
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_images_are_reserved_as_their_model_bills_them(kind, moto_endpoint, fake):
    """10 parallel requests of 10 1024x1024 images on gpt-4o-mini: each image billed 25,501
    input tokens (2,833 + 4 tiles of 5,667). Reserved as 1,600, they spent 15.8x the budget."""
    billed = 10 * 25_501 + 20
    app, _ = tenant_app(
        kind,
        moto_endpoint,
        fake,
        openai_compat_free_mode=True,
        tenant_monthly_budget_usd=0.1,  # a request costs about 0.0383 USD: two fit
        free_mode_requests_per_minute=1000,
        free_mode_tokens_per_day=10**9,
        max_concurrent_requests=10,
        max_concurrent_per_client=10,
    )
    fake.enqueue(*[Step(usage={"input_tokens": billed, "output_tokens": 10}) for _ in range(10)])
    image = {"type": "image_url", "image_url": {"url": png_of(1024, 1024)}}
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "비교해 줘"}] + [image] * 10}
        ],
    }

    def ask(_: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}/v1/chat/completions",
            json=body,
            headers={"X-Api-Key": "client-1"},
            timeout=60,
        )

    with LiveServer(app) as server, concurrent.futures.ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(ask, range(10)))
        own = usage_of(server).json()
    answered = [r for r in replies if r.status_code == 200]
    assert 1 <= len(answered) <= 2, [r.status_code for r in replies]
    assert own["cost_usd"] <= 0.1


def test_a_snapshot_billed_apart_from_its_alias_is_priced_by_its_own_row():
    from llm_server.usage.pricing import PriceSheet

    sheet = PriceSheet()
    dated = sheet.price("openai", "gpt-4o-2024-05-13")
    alias = sheet.price("openai", "gpt-4o")
    assert dated is not None and alias is not None
    assert (dated.input, dated.output) == (2 * alias.input, 3 * alias.output // 2)
    assert sheet.price("openai", "gpt-4o-2024-08-06") == alias
    profile = sheet.price("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    model = sheet.price("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert profile is not None and model is not None and profile.input > model.input


def test_made_up_model_names_cost_bounded_memory_and_each_is_logged_once():
    """A tenant naming endless unknown models (each priced on admission) grows nothing."""
    import tracemalloc

    from llm_server.usage.pricing import PriceSheet

    sheet = PriceSheet()
    with capture_logs() as logs:
        assert sheet.price("openai", "made-up") is None
        assert sheet.price("openai", "made-up") is None
    assert [r["model"] for r in logs.records()] == ["made-up"]
    assert sheet.price("openai", "gpt-4o-mini-2024-07-18") == sheet.price("openai", "gpt-4o-mini")

    def held_after(names: int) -> int:
        for index in range(names):
            sheet.price("openai", f"made-up-{index:06d}-" + "x" * 100)
        return tracemalloc.get_traced_memory()[0]

    from llm_server.utils.log import logger

    level = logger.level
    logger.setLevel("ERROR")  # 21,000 warnings: not the memory under test
    tracemalloc.start()
    try:
        few = held_after(1_000)
        many = held_after(20_000)
    finally:
        tracemalloc.stop()
        logger.setLevel(level)
    assert many - few < 100_000, f"{many - few} bytes more for 19,000 more names"


def test_the_callers_own_key_is_shown_but_never_counts_against_the_budget(
    kind, moto_endpoint, fake
):
    app, _ = tenant_app(kind, moto_endpoint, fake, tenant_monthly_budget_usd=1.0)
    with LiveServer(app) as server:
        post_chat(server, openai_api_key="sk-tenant-own-" + "o" * 40)
        own = usage_of(server).json()
    (row,) = own["by_model"]
    assert row["api_key_source"] == "user" and row["cost_usd"] > 0
    assert own["cost_usd"] == 0 and own["remaining_usd"] == 1.0 and own["budget_usd"] == 1.0


def test_concurrent_turns_never_take_a_tenant_past_its_budget(kind, moto_endpoint, fake):
    # Each turn's worst case: its input estimate + max_tokens 1000 at gpt-4o-mini's output price,
    # about 0.0006 USD: a budget of 0.0075 USD fits a dozen. Each really uses its 1000 output
    # tokens, so unchecked, 40 would cost 0.024 USD.
    app, _ = tenant_app(
        kind,
        moto_endpoint,
        fake,
        tenant_monthly_budget_usd=0.0075,
        free_mode_requests_per_minute=1000,
        free_mode_tokens_per_day=10**9,
        max_concurrent_requests=40,
        max_concurrent_per_client=40,
    )
    fake.enqueue(*[Step(usage={"output_tokens": 1000}) for _ in range(40)])
    with LiveServer(app) as server, concurrent.futures.ThreadPoolExecutor(40) as pool:
        replies = list(pool.map(lambda _: post_chat(server, max_tokens=1000, **FREE), range(40)))
        own = usage_of(server).json()
    refused = [r for r in replies if r.status_code == 429]
    admitted = [r for r in replies if r.status_code == 200]
    assert len(admitted) + len(refused) == 40 and 12 <= len(admitted) < 40
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    assert all("0.0075 USD" in r.json()["error"]["message"] for r in refused)
    assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
    assert own["cost_usd"] <= 0.0075
    assert own["by_model"][0]["requests"] == len(admitted)


def test_a_dropped_stream_is_charged_what_it_sent(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake)
    fake.enqueue(Step(stall_after=1, stall=3.0))
    body = {"user_message": "tell me a long story", "stream": True, "max_tokens": 500, **FREE}
    with LiveServer(app) as server:
        with httpx.stream(
            "POST", f"{server.url}/api/v1/chat", json=body, headers={"X-Api-Key": "client-1"}
        ) as response:
            first = next(response.iter_lines())  # one delta, then the client goes away
        rows = []
        for _ in range(200):  # the server notices the disconnect and charges the turn
            rows = usage_of(server).json()["by_model"]
            if rows:
                break
            time.sleep(0.05)
    assert first.startswith("event: delta")
    (row,) = rows
    assert row["requests"] == 1 and 1 <= row["output_tokens"] < 500
    assert row["cost_usd"] > 0


def test_a_bad_month_is_a_422_naming_it(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake)
    with LiveServer(app) as server:
        bad = usage_of(server, month="2026-13")
        other = usage_of(server, month="2020-01").json()
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "query.month"
    assert other == {**other, "month": "2020-01", "by_model": [], "cost_usd": 0}


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ('{"m": {"output": 1}}', "needs input"),
        ('{"m": {"input": 1, "output": -1}}', "must be a number"),
        ('{"m": {"input": 1, "output": 1, "cheap": 0}}', "unknown price"),
    ],
)
def test_bad_model_prices_stop_the_server_naming_the_entry(value, named):
    from llm_server.config.settings import load_settings
    from llm_server.exceptions import ConfigurationException

    with pytest.raises(ConfigurationException) as raised:
        load_settings(_env_file=None, model_prices=value)
    assert "MODEL_PRICES" in raised.value.message and named in raised.value.message


def test_model_prices_override_the_sheet(kind, moto_endpoint, fake):
    prices = json.dumps({"gpt-4o-mini": {"input": 1.0, "output": 2.0}})
    app, _ = tenant_app(kind, moto_endpoint, fake, model_prices=prices)
    with LiveServer(app) as server:
        reply = post_chat(server, **FREE).json()
        (row,) = usage_of(server).json()["by_model"]
    expected = dollars(reply["input_tokens"], "1") + dollars(reply["output_tokens"], "2")
    assert abs(Decimal(str(row["cost_usd"])) - expected) < Decimal("1e-9")


def test_the_operators_report_lists_tenants_by_what_the_operator_paid(kind, moto_endpoint, fake):
    app, (settings, *_) = tenant_app(kind, moto_endpoint, fake)
    with LiveServer(app) as server:
        post_chat(server, **FREE)
        post_chat(server, "client-2", **FREE)
        post_chat(server, "client-2", user_message="a longer question " * 20, **FREE)
        owners = [usage_of(server, client=c).json()["owner"] for c in ("client-1", "client-2")]
    functions = str(Path(llm_server.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": functions, "LOG_FILE": ""}
    env.update(STORE=settings.store, STORE_PATH=settings.store_path)
    if settings.store == "dynamodb":
        env.update(DYNAMODB_TABLE=settings.dynamodb_table, AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint)
    report = subprocess.run(
        [sys.executable, "-m", "llm_server.usage", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows = json.loads(report.stdout)["rows"]
    assert [row["owner"] for row in rows] == [owners[1], owners[0]]  # client-2 paid more
    assert [row["requests"] for row in rows] == [2, 1]
    text = subprocess.run(
        [sys.executable, "-m", "llm_server.usage"], env=env, capture_output=True, text=True
    ).stdout
    assert text.index(owners[1]) < text.index(owners[0])


def test_the_request_log_line_carries_the_owner_and_the_turns_cost(kind, moto_endpoint, fake):
    """What the template's saved Logs Insights query sums: `cost_usd` by `client`."""
    app, _ = tenant_app(kind, moto_endpoint, fake)
    with LiveServer(app) as server, capture_logs() as logs:
        post_chat(server, **FREE)
        owner = usage_of(server).json()["owner"]
    (line,) = [
        r for r in logs.records() if r["message"] == "request" and r["path"] == "/api/v1/chat"
    ]
    assert line["client"] == owner and line["api_key_source"] == "server"
    assert line["cost_usd"] > 0


class BrokenLedgerStore:
    """A usage store whose every write fails, as a store that is down would."""

    def add(self, entries, ttl):
        raise OSError("the ledger's store is down")

    def month(self, owner, month):
        return []

    def tenants(self, month):
        return {}


def test_deferred_usage_is_written_when_the_server_stops(kind, moto_endpoint, fake):
    app, _ = tenant_app(kind, moto_endpoint, fake, usage_flush_seconds=60)
    with LiveServer(app) as server:
        assert post_chat(server, user_message="안녕", **FREE).status_code == 200
    with LiveServer(app) as server:  # the same app again: the first server's loop is gone
        (row,) = usage_of(server).json()["by_model"]
    assert row["requests"] == 1 and row["api_key_source"] == "server"


@pytest.mark.parametrize("flush", [0, 60], ids=["written-before-answering", "deferred"])
def test_a_failing_ledger_write_never_fails_the_request(fake, flush):
    from helpers.fakes import FailingProvider
    from helpers.settings import make_settings
    from llm_server.app import Services, create_app
    from llm_server.usage.ledger import UsageLedger
    from llm_server.usage.pricing import PriceSheet

    settings = make_settings(openai_base_url=fake.url, llm_provider="openai")
    ledger = UsageLedger(BrokenLedgerStore(), PriceSheet(), 400, flush_seconds=flush)
    local = FailingProvider(AssertionError("no local model here"), name="local")
    services = Services.from_settings(settings, local=local, usage=ledger)
    with capture_logs() as logs:
        with LiveServer(create_app(settings, services)) as server:
            reply = post_chat(server, openai_api_key="sk-tenant-own-" + "o" * 40)
    assert reply.status_code == 200 and reply.json()["response_text"]
    assert any(r["message"] == "could not record usage" for r in logs.records())


def test_documents_are_reserved_by_their_bytes(kind, moto_endpoint, fake):
    """A 300 KB text file (about 150,000 tokens at 2 bytes a token) on a 100,000-token day is
    refused before the model is called; a PDF reserves its pages as images too."""
    import base64

    from llm_server.core.free_mode import PAGE_TOKENS, document_tokens
    from llm_server.values import Document

    app, _ = tenant_app(
        kind,
        moto_endpoint,
        fake,
        openai_compat_free_mode=True,
        free_mode_tokens_per_day=100_000,
        max_body_bytes=2_000_000,
    )
    notes = base64.b64encode(b"minutes " * 37_500).decode()
    file = {"filename": "notes.txt", "file_data": f"data:text/plain;base64,{notes}"}
    with LiveServer(app) as server:
        reply = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "max_tokens": 10,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "요약"},
                            {"type": "file", "file": file},
                        ],
                    }
                ],
            },
            headers={"X-Api-Key": "client-1"},
            timeout=60,
        )
    assert reply.status_code == 429 and reply.json()["error"]["code"] == "free_mode_quota_exceeded"
    assert fake.seen == []
    pages = b"%PDF-1.4\n" + b"1 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" * 3
    reserved = document_tokens(Document("a.pdf", "application/pdf", pages))
    assert reserved == len(pages) // 2 + 1 + 3 * PAGE_TOKENS
