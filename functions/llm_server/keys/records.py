"""A gateway key as stored: its id, owner, policy and the hashes of its secrets (never a secret).

A secret is `llms_` and 43 URL-safe characters (256 random bits): shown once, at creation or
rotation; only its SHA-256 is kept (a secret that strong needs no slow hash). Its first
`PREFIX_LENGTH` characters are kept too, to tell keys apart in a list. The owner id, which
sessions, usage and budgets are keyed by, is the key's (`gk:<id>`, stable across rotation), or
for a key imported from API Gateway that key's own (`apikey:<API Gateway key id>`), so its
tenant's history continues.

Light on purpose: the Lambda authorizer imports it on its cold start.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

SECRET_PREFIX = "llms_"
PREFIX_LENGTH = 12  # `llms_` and 7 random characters: enough to tell keys apart, never to use one
OWNER_PREFIX = "gk:"


def new_secret() -> str:
    """A fresh secret for a key (shown to the operator once)."""
    import secrets  # only where keys are made: every request imports this module

    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """What is stored of a secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(value: str) -> bool:
    """Whether a credential claims to be one of the gateway's keys (by its prefix)."""
    return value.startswith(SECRET_PREFIX)


def shown(secret: str) -> str:
    """What a list shows of a secret: its prefix (of an imported credential, 4 characters)."""
    return secret[: PREFIX_LENGTH if looks_like_secret(secret) else 4]


def new_key_id(now: float) -> str:
    """An id that sorts by creation time: milliseconds in hex, then 32 random bits."""
    import secrets

    return f"{int(now * 1000):012x}{secrets.token_hex(4)}"


@dataclass(frozen=True)
class KeyPolicy:
    """What a key may do. None: no limit of that kind (the server's own still apply).

    `models`: the models it may name (None: every model the server serves); `rpm`: turns in any
    60 s; `tpm`: tokens in a UTC clock minute (reserved at admission, as free mode's day is);
    `monthly_budget_usd`: what it may spend of the operator's money a UTC month (None: the
    tenant budgets of the settings); `paid_models`: whether it may be served on the operator's
    account at all (free mode, Bedrock); `expires_at`: epoch seconds after which it is refused.
    """

    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    monthly_budget_usd: float | None = None
    paid_models: bool = True
    expires_at: float | None = None

    def allows(self, model: str) -> bool:
        """Whether the key may use `model` (a name as routing resolved it)."""
        return self.models is None or model in self.models

    def to_json(self) -> str:
        """The policy as compact JSON (the authorizer's context carries it as one string)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> KeyPolicy:
        """The policy `to_json` wrote."""
        return cls.of(json.loads(text))

    @classmethod
    def of(cls, values: dict[str, Any]) -> KeyPolicy:
        """A policy from its fields as JSON holds them (models as a list)."""
        models = values.get("models")
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**{**known, "models": None if models is None else tuple(models)})


@dataclass(frozen=True)
class GatewayKey:
    """A key's record: who it is, its policy, and the hashes of its secrets that still work.

    `hashes` maps each live secret's hash to when it stops working (None: until rotated or
    revoked); a rotation with a grace period keeps the old one until its time.
    """

    id: str
    owner: str
    name: str
    prefix: str
    policy: KeyPolicy
    created_at: float
    updated_at: float
    metadata: dict[str, str] = field(default_factory=dict)
    revoked_at: float | None = None
    hashes: dict[str, float | None] = field(default_factory=dict)
    version: int = 0

    def to_json(self) -> str:
        """The record as JSON (what the stores keep)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GatewayKey:
        """The record `to_json` wrote."""
        values = json.loads(text)
        return cls(**{**values, "policy": KeyPolicy.of(values["policy"])})

    def live_hashes(self, now: float) -> dict[str, float | None]:
        """The hashes whose secrets still work at `now` (a lapsed grace period's are gone)."""
        return {h: until for h, until in self.hashes.items() if until is None or until > now}

    def refusal(self, secret_hash: str, now: float) -> str | None:
        """Why the secret of `secret_hash` is refused at `now` (an error code), or None."""
        if self.revoked_at is not None:
            return "key_revoked"
        if secret_hash not in self.live_hashes(now):
            return "invalid_client_key"  # rotated away: as good as unknown
        expires = self.policy.expires_at
        if expires is not None and expires <= now:
            return "key_expired"
        return None


def issue(
    name: str,
    policy: KeyPolicy,
    metadata: dict[str, str],
    now: float | None = None,
    owner: str | None = None,
    secret: str | None = None,
) -> tuple[GatewayKey, str]:
    """A new key and its secret (`secret` given: an existing credential imported as a key)."""
    now = time.time() if now is None else now
    secret = secret or new_secret()
    key_id = new_key_id(now)
    key = GatewayKey(
        id=key_id,
        owner=owner or OWNER_PREFIX + key_id,
        name=name,
        prefix=shown(secret),
        policy=policy,
        created_at=now,
        updated_at=now,
        metadata=metadata,
        hashes={secret_hash(secret): None},
    )
    return key, secret


def rotated(key: GatewayKey, grace_seconds: float, now: float) -> tuple[GatewayKey, str]:
    """The key with a new secret; the old ones work `grace_seconds` longer (0: not at all)."""
    secret = new_secret()
    until = now + grace_seconds
    live = key.live_hashes(now) if grace_seconds > 0 else {}
    kept = {h: until if old is None else min(old, until) for h, old in live.items()}
    hashes = {**kept, secret_hash(secret): None}
    changed = replace(key, prefix=shown(secret), hashes=hashes, updated_at=now)
    return changed, secret
