"""Embedding models on the price sheet: their input at its price, no output, overrides alike."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llm_server.usage.pricing import PICO, PriceSheet, parse_overrides
from llm_server.values import Generation

MILLION = 1_000_000


@pytest.mark.parametrize(
    ("provider", "model", "usd_per_million"),
    [
        ("openai", "text-embedding-3-small", "0.02"),
        ("openai", "text-embedding-3-large", "0.13"),
        ("openai", "text-embedding-ada-002", "0.10"),
        ("bedrock", "amazon.titan-embed-text-v2:0", "0.02"),
        ("bedrock", "cohere.embed-english-v3", "0.10"),
        ("bedrock", "cohere.embed-multilingual-v3", "0.10"),
        ("bedrock", "us.cohere.embed-v4:0", "0.12"),  # a profile, priced as its model
    ],
)
def test_an_embedding_costs_its_input_tokens_at_the_sheets_price(provider, model, usd_per_million):
    price = PriceSheet().price(provider, model)
    assert price is not None
    used = Generation("", model, input_tokens=MILLION, output_tokens=0)
    assert price.cost(used) == Decimal(usd_per_million) * PICO
    assert price.output == 0
    assert price.worst_case(MILLION, 0) == Decimal(usd_per_million) * PICO


def test_an_operator_prices_an_embedding_model_by_its_input_alone():
    sheet = PriceSheet(parse_overrides('{"my-embedder": {"input": 0.5}}'))
    price = sheet.price("openai", "my-embedder")
    assert price is not None and price.input == 500_000 and price.output == 0
