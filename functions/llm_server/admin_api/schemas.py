"""The admin API's bodies: a key's policy in, a key's view out (never a stored hash).

Times are RFC 3339 in UTC; money is USD at full precision; a secret appears once, in the answer
that made it (`key`).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from llm_server.keys.admin import Spend
from llm_server.keys.records import GatewayKey, KeyPolicy
from llm_server.usage.pricing import usd

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(max_length=256)]
Owner = Annotated[str, StringConstraints(pattern=r"^[a-z]+:[A-Za-z0-9._:-]{1,128}$")]
Secret = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{20,256}$")]
MAX_RPM = 1_000_000
MAX_TPM = 1_000_000_000
MAX_BUDGET_USD = 1_000_000_000
# The policy travels in the authorizer's context, and behind the Web Adapter in a request header
# uvicorn caps at 16 KB: 50 names of 200 characters at most keep it under 11 KB.
Models = Annotated[list[ModelName], Field(min_length=1, max_length=50)]
Label = Annotated[str, StringConstraints(max_length=64)]
Metadata = Annotated[dict[Label, Short], Field(max_length=32)]


class PolicyFields(BaseModel):
    """A key's policy, every field optional (absent in a PATCH: unchanged; null: no limit)."""

    model_config = ConfigDict(extra="forbid")

    models: Models | None = Field(
        None, description="Models the key may name (null: every model the server serves)"
    )
    rpm: int | None = Field(None, ge=1, le=MAX_RPM, description="Turns in any 60 seconds")
    tpm: int | None = Field(
        None, ge=1, le=MAX_TPM, description="Tokens a UTC minute (worst case reserved)"
    )
    monthly_budget_usd: float | None = Field(
        None,
        ge=0,
        le=MAX_BUDGET_USD,
        description="USD of the operator's money a UTC month (null: the tenant budgets)",
    )
    paid_models: bool | None = Field(
        None, description="May it be served on the operator's account (free mode, Bedrock)"
    )
    expires_at: AwareDatetime | None = Field(None, description="When it stops working")
    metadata: Metadata | None = None
    name: Name | None = None

    @field_validator("monthly_budget_usd")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def policy(self, base: KeyPolicy) -> KeyPolicy:
        """`base` with the fields this body sets (a PATCH's; a creation's on the defaults)."""
        fields = self.model_fields_set & set(KeyPolicy.__dataclass_fields__)
        values: dict[str, Any] = {name: getattr(self, name) for name in fields}
        if "models" in values and values["models"] is not None:
            values["models"] = tuple(dict.fromkeys(values["models"]))
        if "expires_at" in values and values["expires_at"] is not None:
            values["expires_at"] = values["expires_at"].timestamp()
        if values.get("paid_models", True) is None:
            values["paid_models"] = base.paid_models  # null: as it was
        return KeyPolicy.of({**_fields(base), **values})


class CreateKey(PolicyFields):
    """A new key: its name and policy; `secret` and `owner` import an existing credential."""

    name: Name
    secret: Secret | None = Field(
        None,
        description="Import this credential (an API Gateway key's value) instead of a new "
        "secret: only its hash is kept",
    )
    owner: Owner | None = Field(
        None,
        description="The owner id its usage and budget are kept under (an imported key's "
        "tenant, e.g. apikey:<id>); default gk:<key id>",
    )

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value <= dt.datetime.now(dt.UTC):
            raise ValueError("must be in the future")
        return value


class RotateKey(BaseModel):
    """How long the old secret keeps working after a rotation (0: not at all)."""

    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(0, ge=0, le=7 * 86_400)


class ErrorDetail(BaseModel):
    """What went wrong: a stable `code`, and the field at fault (`param`)."""

    type: str
    code: str
    message: str
    param: str | None


class AdminError(BaseModel):
    """Every admin API error (`admin_api/errors.py`)."""

    error: ErrorDetail


class KeyView(BaseModel):
    """A key as the operator sees it: policy, state, this month's spend; never a secret."""

    id: str
    name: str
    owner: str
    prefix: str
    status: str
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    monthly_budget_usd: float | None
    paid_models: bool
    expires_at: dt.datetime | None
    metadata: dict[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime
    revoked_at: dt.datetime | None
    month: str
    spend_usd: float
    requests: int
    input_tokens: int
    output_tokens: int


class DailySpend(BaseModel):
    """The operator's money a key spent on one UTC day."""

    day: str
    spend_usd: float


class KeyDetail(KeyView):
    """One key, with its spend on each of the last days."""

    daily: list[DailySpend]


class IssuedKey(KeyView):
    """A key just made or rotated, with its secret: shown this once, never again.

    `key` is null for an imported credential: its holder has it, and it is not repeated.
    """

    key: str | None


class KeyList(BaseModel):
    """A page of keys; `next` is the cursor of the next page (`?after=`), null at the end."""

    data: list[KeyView]
    next: str | None


def key_view(key: GatewayKey, spend: Spend, now: float) -> dict[str, Any]:
    """The fields of a `KeyView`."""
    policy = key.policy
    return {
        "id": key.id,
        "name": key.name,
        "owner": key.owner,
        "prefix": key.prefix,
        "status": _status(key, now),
        "models": None if policy.models is None else list(policy.models),
        "rpm": policy.rpm,
        "tpm": policy.tpm,
        "monthly_budget_usd": policy.monthly_budget_usd,
        "paid_models": policy.paid_models,
        "expires_at": _time(policy.expires_at),
        "metadata": key.metadata,
        "created_at": _time(key.created_at),
        "updated_at": _time(key.updated_at),
        "revoked_at": _time(key.revoked_at),
        "month": spend.month,
        "spend_usd": usd(spend.spend_usd_pico),
        "requests": spend.requests,
        "input_tokens": spend.input_tokens,
        "output_tokens": spend.output_tokens,
    }


def _status(key: GatewayKey, now: float) -> str:
    if key.revoked_at is not None:
        return "revoked"
    expires = key.policy.expires_at
    return "expired" if expires is not None and expires <= now else "active"


def _time(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def _fields(policy: KeyPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in KeyPolicy.__dataclass_fields__}
