"""What a turn costs, to the token: the price sheet and the arithmetic.

`prices.json` (beside this file) says its date and source; `MODEL_PRICES` (the same shape, JSON)
overrides or adds entries, and its `"*"` entry, if any, prices every model the sheet lacks (the
operator's rule); the local model costs 0. Prices are USD per 1M tokens, kept as integer
picodollars per token (1e-12 USD), so costs add up exactly: 0.00875 USD per 1M is 8,750 pico-USD
a token. A model without a price costs None (unknown), never 0: the runner refuses to serve one on
the operator's money. The guardrail (BEDROCK_GUARDRAIL) is priced by the text units Bedrock says
each of its policies read (the sheet's `guardrail` prices, USD per 1,000 units).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from llm_server.utils.log import logger
from llm_server.values import Generation, GuardrailReport

PICO = 10**12
"""Picodollars a dollar."""
_PER_TOKEN = Decimal(PICO) / Decimal(1_000_000)  # a price per 1M tokens → picodollars a token
SHEET = Path(__file__).with_name("prices.json")
FREE_PROVIDERS = frozenset({"local"})
ANY_MODEL = "*"
"""The `MODEL_PRICES` entry that prices every model the sheet has no row for."""
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Price:
    """One model's prices, picodollars a token.

    A sheet entry without `cached_input` prices cached tokens as input, without `cache_write`
    cache writes as input (as billed where the provider has neither); without `output`, output
    at 0 (an embedding model's: it makes none).
    """

    input: int
    output: int
    cached_input: int
    cache_write: int

    @classmethod
    def per_million(cls, entry: dict[str, Any]) -> Price:
        """From USD per 1M tokens (`input`, optional `output`, `cached_input`, `cache_write`)."""
        input_price = _pico(entry["input"])
        return cls(
            input=input_price,
            output=_pico(entry.get("output", 0)),
            cached_input=_pico(entry.get("cached_input", entry["input"])),
            cache_write=_pico(entry.get("cache_write", entry["input"])),
        )

    def cost(self, generation: Generation) -> int:
        """Picodollars for a reply's usage.

        `input_tokens` includes the cached and cache-written ones (OpenAI counts cached tokens
        inside it; the Bedrock provider adds both in); `output_tokens` includes reasoning.
        """
        cached, written = generation.cached_input_tokens, generation.cache_write_tokens
        uncached = max(0, generation.input_tokens - cached - written)
        return (
            uncached * self.input
            + cached * self.cached_input
            + written * self.cache_write
            + generation.output_tokens * self.output
        )

    def worst_case(self, input_tokens: int, max_tokens: int) -> int:
        """Picodollars a turn may cost at most: every input token uncached, every output used."""
        return input_tokens * max(self.input, self.cache_write) + max_tokens * self.output


FREE = Price(0, 0, 0, 0)


class PriceSheet:
    """Prices by model: the shipped sheet, the operator's overrides, the local model's 0.

    Each model's price is looked up once while it is among the last `REMEMBERED` asked for
    (every turn asks, twice when it is metered): a tenant naming endless made-up models costs
    a bounded cache, and each unknown model is logged once while remembered.
    """

    REMEMBERED = 256

    def __init__(self, overrides: dict[str, dict[str, Any]] | None = None) -> None:
        entries = {**_shipped()["models"], **(overrides or {})}
        self._prices = {model: Price.per_million(entry) for model, entry in entries.items()}
        self._fallback = self._prices.pop(ANY_MODEL, None)
        self._remembered = lru_cache(maxsize=self.REMEMBERED)(self._look_up)
        per_unit = Decimal(PICO) / 1000  # a price per 1,000 units → picodollars a unit
        units = _shipped()["guardrail"]["per_1000_units"].items()
        self._guardrail = {name: int(Decimal(str(usd)) * per_unit) for name, usd in units}

    def guardrail_cost(self, report: GuardrailReport | None) -> int:
        """Picodollars the guardrail's checks of a turn cost (units it has no price for: 0)."""
        if report is None:
            return 0
        return sum(count * self._guardrail.get(name, 0) for name, count in report.units)

    def price(self, provider: str, model: str) -> Price | None:
        """The model's price (a profile's id is priced as its model), or None if unknown."""
        return FREE if provider in FREE_PROVIDERS else self._remembered(provider, model)

    def _look_up(self, provider: str, model: str) -> Price | None:
        price = next(filter(None, map(self._prices.get, _names_of(model))), self._fallback)
        if price is None:
            logger.warning(
                "no price for this model: refused on the operator's account until MODEL_PRICES "
                "prices it; on a caller's own key its usage is recorded, its cost unknown",
                extra={"model": model, "provider": provider},
            )
        return price


def sheet_info() -> dict[str, str]:
    """The shipped sheet's date and source (for the README and system info)."""
    shipped = _shipped()
    return {"date": shipped["date"], "source": shipped["source"]}


def parse_overrides(text: str) -> dict[str, dict[str, Any]]:
    """`MODEL_PRICES` as entries; a ValueError names what is wrong."""
    if not text.strip():
        return {}
    entries = json.loads(text)
    if not isinstance(entries, dict):
        raise ValueError("MODEL_PRICES must be a JSON object of models")
    for model, entry in entries.items():
        if not isinstance(entry, dict) or "input" not in entry:
            raise ValueError(
                f"MODEL_PRICES[{model!r}] needs input (USD per 1M tokens), and output unless "
                "it is an embedding model"
            )
        for name, value in entry.items():
            if name not in ("input", "output", "cached_input", "cache_write"):
                raise ValueError(f"MODEL_PRICES[{model!r}]: unknown price {name!r}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"MODEL_PRICES[{model!r}][{name!r}] must be a number >= 0")
            if not 0 <= value < math.inf:
                raise ValueError(f"MODEL_PRICES[{model!r}][{name!r}] must be a number >= 0")
    rule = entries.get(ANY_MODEL)
    if rule is not None and not (rule["input"] > 0 and rule.get("output", 0) > 0):
        raise ValueError(
            f"MODEL_PRICES[{ANY_MODEL!r}] prices every unlisted model: its input and output "
            "must be above 0 (an unpriced model is refused on the server's account otherwise)"
        )
    return entries


def usd(pico: int) -> float:
    """Picodollars as dollars, for JSON (full precision: no rounding to cents)."""
    return float(Decimal(pico) / PICO)


def _pico(per_million: float) -> int:
    return int(Decimal(str(per_million)) * _PER_TOKEN)


def _names_of(model: str) -> tuple[str, ...]:
    """The names a model is priced by, most specific first.

    Its own; a snapshot's model (`gpt-4o-mini-2024-07-18` is `gpt-4o-mini`); a Bedrock
    profile's or ARN's model.
    """
    from llm_server.providers.bedrock.models import base_id

    return model, _SNAPSHOT.sub("", model), base_id(model)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SHEET.read_text(encoding="utf-8"))
    return loaded
