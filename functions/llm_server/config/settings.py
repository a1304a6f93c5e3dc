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
import re
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
_GUARDRAIL = re.compile(
    r"^([a-z0-9-]{1,64}|arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:guardrail/[a-z0-9]+)"
    r":([1-9]\d{0,7}|DRAFT)$"
)


class Settings(BaseModel):
    """All tunables of LLM Server, with the seed's names and defaults (`load_settings`).

    Each field's description is its meaning in the settings reference (`docs/settings.md`,
    printed by `make settings-doc`); a comment after a blank line starts a section of it.
    """

    model_config = ConfigDict(extra="ignore")

    # Serving
    host: str = Field("127.0.0.1", description="The address the local server listens on.")
    server_port: int = Field(
        5601, ge=1, le=65535, description="The port the local server listens on."
    )
    header_read_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Local server: close a connection whose request headers take longer.",
    )
    body_read_timeout_seconds: float = Field(
        30.0, gt=0, description="A request body not fully arrived by then is a 408."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="The lowest level logged (any case)."
    )
    log_file: str = Field(
        "logs/app.log",
        description="Local runs also write the JSON log lines to this file; empty: none.",
    )
    api_gateway_base_path: str = Field(
        "/",
        description="On Lambda, a custom domain's base path mapping, removed from request paths.",
    )

    # Chat defaults
    default_model: str = Field(
        "gpt-4o-mini",
        min_length=1,
        description="The model of a request that names none; `/v1/models` lists it.",
    )
    default_temperature: float = Field(
        0.7, ge=0.0, le=2.0, description="The `temperature` of a request that sets none."
    )
    default_max_tokens: int = Field(
        1000, ge=1, description="The reply cap of a request that sets no `max_tokens`."
    )
    default_system_message: str = Field(
        DEFAULT_SYSTEM_MESSAGE,
        description="The system prompt of a native chat request that brings none.",
    )

    # Input limits
    max_tokens_limit: int = Field(4096, ge=1, description="The ceiling for `max_tokens`.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="The request body limit.")
    max_history_items: int = Field(
        200,
        ge=0,
        description="Items a request's history may hold (native `conversation_history`, "
        "OpenAI messages or input items).",
    )
    max_memory_items: int = Field(
        100, ge=0, description="Items a native chat request's `memory_context` may hold."
    )
    max_concurrent_requests: int = Field(10, ge=1, description="Requests in progress before 429.")
    max_concurrent_per_client: int | None = Field(
        None,
        ge=1,
        description="Requests in progress one owner may hold; unset: half of "
        "MAX_CONCURRENT_REQUESTS (at least 1).",
    )
    embedding_max_inputs: int = Field(
        512,
        ge=1,
        le=2048,
        description="Inputs one `/v1/embeddings` request may hold (a provider may allow "
        "fewer): what one request can make the server hold (its vectors) and a local or "
        "Bedrock model compute.",
    )
    cors_allow_origins: str = Field(
        "", description="Comma-separated origins allowed from browsers; empty: CORS off."
    )
    openai_compat_free_mode: bool = Field(
        False, description="May `/v1/...` requests without a key use the server's key."
    )
    openai_models: str = Field(
        "",
        description="Comma-separated models `/v1/models` lists besides DEFAULT_MODEL.",
    )

    # Storage: sessions and idempotency records (SQLite file locally, DynamoDB on AWS)
    store: Literal["sqlite", "dynamodb"] = Field(
        "sqlite",
        description="Where sessions, stored responses and idempotency records live "
        "(`dynamodb` needs DYNAMODB_TABLE).",
    )
    store_path: str = Field(
        "data/llm-server.sqlite3", description="The SQLite file, with STORE=sqlite."
    )
    dynamodb_table: str | None = Field(None, description="The DynamoDB table, with STORE=dynamodb.")
    sessions_enabled: bool = Field(
        True,
        description="Keep sessions, stored responses, conversations and background responses; "
        "false: none are stored.",
    )
    session_ttl_seconds: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="How long a session, stored response or conversation lives after its "
        "last write.",
    )
    session_max_turns: int = Field(
        20, ge=0, description="History budget taken from a session: turns."
    )
    session_max_tokens: int = Field(
        2000, ge=0, description="History budget taken from a session: tokens."
    )
    session_max_stored_turns: int = Field(
        200,
        ge=1,
        description="Turns one session may hold; older turns are pruned.",
    )
    session_max_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="Bytes one session may hold (and a stored-response chain may send); "
        "older turns are pruned.",
    )
    sessions_max_per_owner: int = Field(
        1000,
        ge=1,
        le=5000,
        description="Sessions one owner keeps; one more erases the oldest-started. At most "
        "5,000: one DynamoDB item holds an owner's ledger.",
    )
    stored_responses_max_per_owner: int = Field(
        1000,
        ge=1,
        le=5000,
        description="Stored responses one owner keeps; past it the oldest are erased.",
    )
    stored_responses_max_bytes_per_owner: int = Field(
        100 * 1024 * 1024,
        ge=1_048_576,
        description="Bytes of stored responses one owner keeps; past it the oldest are erased.",
    )
    conversations_max_per_owner: int = Field(
        1000, ge=1, le=5000, description="`/v1/conversations` one owner keeps."
    )
    conversation_max_items: int = Field(1000, ge=1, description="Items one conversation keeps.")
    idempotency_ttl_seconds: int = Field(
        3600, ge=1, description="How long an `Idempotency-Key`'s answer is kept for retries."
    )
    background_timeout_seconds: int = Field(
        600,
        ge=10,
        le=900,
        description="How long a background response may run (Lambda's 15 minutes at most).",
    )
    background_max_per_owner: int = Field(
        8, ge=1, le=100, description="Background responses one owner may have queued or running."
    )
    background_function: str = Field(
        "",
        description="On AWS, the function that runs background responses; empty: a task of "
        "this server.",
    )

    # Callers: who owns a session, a cache entry or an idempotency record (see docs/security.md)
    identity_source: Literal["client_key", "gateway"] = Field(
        "client_key",
        description="Where the caller's identity comes from: its `X-Api-Key` (`client_key`) or "
        "the key API Gateway's authorizer checked (`gateway`).",
    )
    allow_anonymous: bool = Field(
        True, description="Serve callers with no identity, as the owner `anonymous`."
    )
    client_api_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated `X-Api-Key` values of known local clients (free mode "
        "needs one, or a gateway key).",
    )
    system_info_detail: Literal["basic", "full"] = Field(
        "basic",
        description="`full` adds paths, process id and upstream URL to `/api/v1/system/info`.",
    )

    # Admin: the admin API (/admin/v1/keys) and page, never by a shared secret on AWS
    admin_api_key: SecretStr = Field(
        SecretStr(""),
        description="The bearer key of the admin API and page (`/admin/v1/keys`, `/admin`) on "
        "the local server; empty: no admin API.",
    )
    admin_iam: bool = Field(
        False,
        description="The admin API takes the IAM principal API Gateway verified on its "
        "`AWS_IAM` routes.",
    )

    # Free mode: the server's key, for identified clients within quotas
    free_mode_enabled: bool = Field(True, description="May requests use the server's key at all.")
    free_mode_requests_per_minute: int = Field(
        10, ge=1, description="Free-mode requests one client may make a minute."
    )
    free_mode_tokens_per_day: int = Field(
        100_000, ge=1, description="Free-mode tokens one client may spend a day."
    )

    # Response cache (per warm container)
    cache_enabled: bool = Field(True, description="Answer repeated requests from the cache.")
    cache_max_entries: int = Field(1000, ge=1, description="Answers the cache holds.")
    cache_ttl_seconds: int = Field(300, ge=1, description="How long a cached answer is served.")
    cache_any_temperature: bool = Field(
        False, description="Cache sampled (temperature > 0) requests too."
    )
    cache_shared: bool = Field(
        False,
        description="With STORE=dynamodb, share cached answers between containers.",
    )

    # Providers
    llm_provider: Literal["auto", "local", "openai"] = Field(
        "auto",
        description="Where a model not local or on Bedrock goes: `auto` is OpenAI when a key "
        "can be resolved for the request, else the local model; `local` turns OpenAI off, "
        "`openai` the local model.",
    )
    openai_api_key: SecretStr | None = Field(
        None, description="The server's default OpenAI key, used only in free mode."
    )
    openai_secret_name: str | None = Field(
        None,
        description="The Secrets Manager secret (name or ARN) holding the server's key; wins "
        "over OPENAI_API_KEY.",
    )
    secret_cache_seconds: int = Field(300, ge=0, description="How long the secret is cached.")
    openai_base_url: str | None = Field(
        None,
        description="Any server that speaks the Responses API; unset: api.openai.com.",
    )
    openai_timeout_seconds: float = Field(
        25.0, gt=0, description="Time budget of one upstream call, retries included."
    )
    openai_max_retries: int = Field(2, ge=0, le=10, description="Retries after the first attempt.")
    openai_http_client: Literal["auto", "httpx", "aiohttp"] = Field(
        "auto",
        description="The HTTP client of calls to OpenAI: `auto` is aiohttp if installed, "
        "else httpx2.",
    )
    lambda_time_margin_seconds: float = Field(
        1.0,
        ge=0,
        description="On Lambda, a request's time budget ends this long before the function's "
        "timeout.",
    )
    local_model_path: str | None = Field(
        None, description="The local model's GGUF file; unset: the bundled SmolLM2 file."
    )
    local_context_size: int = Field(2048, ge=256, description="llama.cpp's context, in tokens.")
    local_threads: int | None = Field(
        None, ge=1, description="llama.cpp's threads; unset: the CPU count."
    )
    local_generation_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="A local generation past this is stopped (504 `generation_timeout`); so "
        "is a local embedding request whose texts have taken this long of the worker.",
    )
    bedrock_models: str = Field(
        "",
        description="Comma-separated Bedrock model ids requests may name; empty: Bedrock off.",
    )
    bedrock_region: str | None = Field(
        None, description="Where Bedrock calls go; unset: the function's region."
    )
    bedrock_timeout_seconds: float = Field(
        25.0,
        gt=0,
        description="Time budget of one Bedrock call, retries included (or less: the "
        "request's deadline).",
    )
    bedrock_prompt_caching: bool = Field(
        False,
        description="A `cachePoint` after the system prompt and tools, on the models that "
        "take one.",
    )
    bedrock_guardrail: str = Field(
        "",
        description="`id:version` (or ARN and version) of the Amazon Bedrock Guardrail every "
        "turn passes through, on every provider; empty: none.",
    )
    guardrail_stream_chars: int = Field(
        1000,
        ge=100,
        le=20_000,
        description="A stream on a provider that does not apply the guardrail itself is "
        "checked in chunks of this many characters (1,000: one text unit).",
    )
    model_fallbacks: str = Field(
        "",
        description="`model=fallback` pairs, comma-separated: a turn whose model fails (429, "
        "5xx, timeout) runs once on its fallback.",
    )
    model_aliases: str = Field(
        "",
        description="`alias=model` pairs, comma-separated: names clients send (Claude Code's "
        "own model names) for models the server serves.",
    )
    model_fallbacks_server_pays: bool = Field(
        False,
        description="A fallback keeps who pays a turn; true lets a turn on the caller's own key "
        "fall back to a model the server's account pays (Bedrock, or the server's OpenAI key), "
        "on the caller's budget.",
    )

    # Usage and budgets: what each tenant spends, in USD at the price sheet's prices
    model_prices: str = Field(
        "", description="JSON price entries overriding or adding to the price sheet."
    )
    tenant_monthly_budget_usd: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="USD each tenant may spend of the operator's money a UTC month; unset: no "
        "budget.",
    )
    tenant_budgets_usd: str = Field(
        "",
        description="JSON, owner id to USD a month, overriding TENANT_MONTHLY_BUDGET_USD.",
    )
    usage_retention_days: int = Field(
        400, ge=1, description="How long a ledger row lives after its last write."
    )
    usage_flush_seconds: float = Field(
        0.0,
        ge=0,
        le=60,
        description="0: each turn's ledger row is written as it ends (on Lambda after the "
        "answer, by the extension). More: a long-lived server answers first and writes each "
        "interval's rows together; a crash loses that interval's rows.",
    )

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

    def guardrail(self) -> tuple[str, str] | None:
        """`BEDROCK_GUARDRAIL` as (identifier, version), or None when no guardrail is set."""
        if not self.bedrock_guardrail:
            return None
        identifier, _, version = self.bedrock_guardrail.rpartition(":")
        return identifier, version

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

    @field_validator("bedrock_guardrail")
    @classmethod
    def _guardrail(cls, value: str) -> str:
        value = value.strip()
        if value and not _GUARDRAIL.match(value):
            raise ValueError(
                "must be id:version, the guardrail's id (or ARN) and its version (a number, or "
                "DRAFT): abc123def456:1"
            )
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
