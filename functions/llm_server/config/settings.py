"""Server settings, read once from environment variables and an optional `.env` file.

Every name here is an environment variable of the same name in upper case (`SERVER_PORT`,
`DEFAULT_MODEL`, ...), matched whatever its case. Invalid values stop the server at start with a
message naming the variable. Precedence: values passed in, then the environment, then `.env`,
then the defaults (as pydantic-settings orders them; it is not used: its import, with
python-dotenv and argparse, was 5 % of a Lambda cold start, and a plain model does the same for
these scalar fields). `.env` is parsed by python-dotenv, only where the file exists.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from llm_server.exceptions import ConfigurationException

DEFAULT_SYSTEM_MESSAGE = "당신은 도움이 되는 AI 어시스턴트입니다."


class Settings(BaseModel):
    """All tunables of LLM Server, with the seed's names and defaults (`load_settings`)."""

    model_config = ConfigDict(extra="ignore")

    # Serving
    host: str = "127.0.0.1"
    server_port: int = Field(5601, ge=1, le=65535)
    header_read_timeout_seconds: float = Field(10.0, gt=0)
    body_read_timeout_seconds: float = Field(30.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_file: str = "logs/app.log"

    # Chat defaults
    default_model: str = Field("gpt-4o-mini", min_length=1)
    default_temperature: float = Field(0.7, ge=0.0, le=2.0)
    default_max_tokens: int = Field(1000, ge=1)
    default_system_message: str = DEFAULT_SYSTEM_MESSAGE

    # Input limits
    max_tokens_limit: int = Field(4096, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_history_items: int = Field(200, ge=0)
    max_memory_items: int = Field(100, ge=0)
    max_concurrent_requests: int = Field(10, ge=1)
    max_concurrent_per_client: int | None = Field(None, ge=1)
    # Inputs one /v1/embeddings request may hold (each provider may allow fewer): what one
    # request can make the server hold (its vectors) and a local or Bedrock model compute
    embedding_max_inputs: int = Field(512, ge=1, le=2048)
    cors_allow_origins: str = ""
    openai_compat_free_mode: bool = False
    openai_models: str = ""

    # Storage: sessions and idempotency records (SQLite file locally, DynamoDB on AWS)
    store: Literal["sqlite", "dynamodb"] = "sqlite"
    store_path: str = "data/llm-server.sqlite3"
    dynamodb_table: str | None = None
    sessions_enabled: bool = True
    session_ttl_seconds: int = Field(7 * 24 * 3600, ge=1)
    session_max_turns: int = Field(20, ge=0)
    session_max_tokens: int = Field(2000, ge=0)
    session_max_stored_turns: int = Field(200, ge=1)
    session_max_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # Per owner (one DynamoDB item holds an owner's ledger: at most 5,000 entries fit in it)
    sessions_max_per_owner: int = Field(1000, ge=1, le=5000)
    stored_responses_max_per_owner: int = Field(1000, ge=1, le=5000)
    stored_responses_max_bytes_per_owner: int = Field(100 * 1024 * 1024, ge=1_048_576)
    conversations_max_per_owner: int = Field(1000, ge=1, le=5000)
    conversation_max_items: int = Field(1000, ge=1)
    idempotency_ttl_seconds: int = Field(3600, ge=1)
    # Background responses: how long one may run (Lambda's 15 minutes at most), how many an
    # owner may have queued or running, and the function that runs them on AWS ("": in-process)
    background_timeout_seconds: int = Field(600, ge=10, le=900)
    background_max_per_owner: int = Field(8, ge=1, le=100)
    background_function: str = ""

    # Callers: who owns a session, a cache entry or an idempotency record (see docs/security.md)
    identity_source: Literal["client_key", "gateway"] = "client_key"
    allow_anonymous: bool = True
    client_api_keys: SecretStr = SecretStr("")
    system_info_detail: Literal["basic", "full"] = "basic"

    # The admin API (/admin/v1/keys) and page: locally by this bearer key (empty: no admin API);
    # on AWS by IAM (the template's AWS_IAM routes set ADMIN_IAM), never by a shared secret
    admin_api_key: SecretStr = SecretStr("")
    admin_iam: bool = False

    # Free mode: the server's key, for identified clients within quotas
    free_mode_enabled: bool = True
    free_mode_requests_per_minute: int = Field(10, ge=1)
    free_mode_tokens_per_day: int = Field(100_000, ge=1)

    # Response cache (per warm container)
    cache_enabled: bool = True
    cache_max_entries: int = Field(1000, ge=1)
    cache_ttl_seconds: int = Field(300, ge=1)
    cache_any_temperature: bool = False
    cache_shared: bool = False

    # Providers
    llm_provider: Literal["auto", "local", "openai"] = "auto"
    openai_api_key: SecretStr | None = None
    openai_secret_name: str | None = None
    secret_cache_seconds: int = Field(300, ge=0)
    openai_base_url: str | None = None
    openai_timeout_seconds: float = Field(25.0, gt=0)
    openai_max_retries: int = Field(2, ge=0, le=10)
    openai_http_client: Literal["auto", "httpx", "aiohttp"] = "auto"
    lambda_time_margin_seconds: float = Field(1.0, ge=0)
    local_model_path: str | None = None
    local_context_size: int = Field(2048, ge=256)
    local_threads: int | None = Field(None, ge=1)
    local_generation_timeout_seconds: float = Field(60.0, gt=0)
    bedrock_models: str = ""
    bedrock_region: str | None = None
    bedrock_timeout_seconds: float = Field(25.0, gt=0)
    bedrock_prompt_caching: bool = False
    model_fallbacks: str = ""
    # `alias=model` pairs: a name clients send (Claude Code's own model names) for a model served
    model_aliases: str = ""
    # A fallback keeps who pays a turn: true lets a turn on the caller's own key fall back to a
    # model the server's account pays (Bedrock, or the server's OpenAI key), on its budget.
    model_fallbacks_server_pays: bool = False

    # Usage and budgets: what each tenant spends, in USD at the price sheet's prices
    model_prices: str = ""
    tenant_monthly_budget_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    tenant_budgets_usd: str = ""
    usage_retention_days: int = Field(400, ge=1)
    # 0: a turn's row is written as it ends (on Lambda after the answer, by the extension);
    # `python -m llm_server` defers them (usage/ledger.py)
    usage_flush_seconds: float = Field(0.0, ge=0, le=60)

    def cors_origin_list(self) -> list[str]:
        """`CORS_ALLOW_ORIGINS`, comma-separated, as a list."""
        return _comma_list(self.cors_allow_origins)

    def per_client_concurrency(self) -> int:
        """MAX_CONCURRENT_PER_CLIENT, by default half of MAX_CONCURRENT_REQUESTS (at least 1)."""
        return self.max_concurrent_per_client or max(1, self.max_concurrent_requests // 2)

    def client_key_list(self) -> list[str]:
        """`CLIENT_API_KEYS`, comma-separated: the keys that identify known local clients."""
        return _comma_list(self.client_api_keys.get_secret_value())

    def openai_model_list(self) -> list[str]:
        """`OPENAI_MODELS`, comma-separated: models `/v1/models` lists besides DEFAULT_MODEL."""
        return _comma_list(self.openai_models)

    def bedrock_model_list(self) -> list[str]:
        """`BEDROCK_MODELS`, comma-separated: the Bedrock model ids requests may name."""
        return _comma_list(self.bedrock_models)

    def model_fallback_map(self) -> dict[str, str]:
        """`MODEL_FALLBACKS`, `model=fallback` pairs, comma-separated."""
        return _pairs(self.model_fallbacks)

    def model_alias_map(self) -> dict[str, str]:
        """`MODEL_ALIASES`, `alias=model` pairs, comma-separated."""
        return _pairs(self.model_aliases)

    def tenant_budget_map(self) -> dict[str, float]:
        """`TENANT_BUDGETS_USD`: owner id → USD a month."""
        return dict(json.loads(self.tenant_budgets_usd)) if self.tenant_budgets_usd else {}

    @field_validator("model_prices")
    @classmethod
    def _prices(cls, value: str) -> str:
        from llm_server.usage.pricing import parse_overrides

        parse_overrides(value)  # a ValueError names the entry
        return value

    @field_validator("tenant_budgets_usd")
    @classmethod
    def _budgets(cls, value: str) -> str:
        if not value.strip():
            return ""
        budgets = json.loads(value)
        if not isinstance(budgets, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < math.inf
            for v in budgets.values()
        ):
            raise ValueError("TENANT_BUDGETS_USD must be a JSON object of owner ids to USD >= 0")
        return value

    @field_validator("model_fallbacks", "model_aliases")
    @classmethod
    def _check_pairs(cls, value: str) -> str:
        for item in _comma_list(value):
            model, equals, other = item.partition("=")
            if not (equals and model.strip() and other.strip()):
                raise ValueError(f"{item!r} is not name=model")
            if model.strip() == other.strip():
                raise ValueError(f"{item!r} names itself")
        return value

    @model_validator(mode="after")
    def _dynamodb_needs_a_table(self) -> Settings:
        if self.store == "dynamodb" and not self.dynamodb_table:
            raise ValueError("STORE=dynamodb needs DYNAMODB_TABLE")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "openai_api_key",
        "openai_secret_name",
        "openai_base_url",
        "local_model_path",
        "dynamodb_table",
        "bedrock_region",
        "tenant_monthly_budget_usd",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


def load_settings(_env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Build settings from the environment, turning pydantic's errors into one clear message.

    `_env_file`: the `.env` file to read beneath the environment (None: none).
    """
    values = _from_env_file(_env_file)
    values.update(_from_environment())
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            ": ".join(filter(None, [".".join(map(str, err["loc"])).upper(), err["msg"]]))
            for err in exc.errors()
        )
        raise ConfigurationException(f"Invalid settings: {problems}") from None


def _from_environment() -> dict[str, str]:
    names = Settings.model_fields
    return {key.lower(): value for key, value in os.environ.items() if key.lower() in names}


def _from_env_file(path: str | Path | None) -> dict[str, Any]:
    if path is None or not Path(path).is_file():
        return {}
    from dotenv import dotenv_values

    names = Settings.model_fields
    entries = dotenv_values(path, encoding="utf-8").items()
    return {key.lower(): value for key, value in entries if key.lower() in names}


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _pairs(value: str) -> dict[str, str]:
    """`a=b` pairs, comma-separated, as a map (checked by the validator)."""
    pairs = (item.partition("=") for item in _comma_list(value))
    return {name.strip(): target.strip() for name, _, target in pairs}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    return load_settings()
