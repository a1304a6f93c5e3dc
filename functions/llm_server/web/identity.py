"""Identify the caller of a request, from sources an attacker cannot set.

- A Lambda event's `requestContext` (Mangum puts it in the ASGI scope): API Gateway's validated
  API key id, or an authorizer's principal. Always trusted: only Lambda's runtime writes it.
- `IDENTITY_SOURCE=gateway` (the deployed functions): behind the Lambda Web Adapter the same
  context arrives in the `x-amzn-request-context` header, which the adapter sets. Nothing else.
- `IDENTITY_SOURCE=client_key` (the local server): the key in `X-Api-Key`, kept as a hash. With
  `CLIENT_API_KEYS` set, only those keys are accepted, and they are known (may use free mode).
  A gateway key (`llms_...`) is looked up by its hash in the key store, every request, so a
  revoked or rotated key stops at once; it is known, and carries its policy.
  The `x-amzn-request-context` header is ignored: over plain HTTP anyone can send it.

On AWS the gateway's keys are checked by the Lambda authorizer (`keys/authorizer.py`), whose
context names the key's owner and policy; both places refuse a key past its `expires_at` here,
to the second, whatever the authorizer's cache holds.

Without any of these the caller is anonymous, which `ALLOW_ANONYMOUS=false` refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from llm_server.config.settings import Settings
from llm_server.core.caller import ANONYMOUS_CALLER, Caller
from llm_server.exceptions import AuthenticationException
from llm_server.utils.redact import key_fingerprint

if TYPE_CHECKING:
    from llm_server.keys.records import KeyPolicy
    from llm_server.stores.keys import KeyStore

_GATEWAY_ONLY = "Free mode needs an API Gateway API key; this request came without one"
_NO_CLIENT_KEYS = (
    "Free mode is refused on this server: it has no CLIENT_API_KEYS to identify clients by"
)
_UNKNOWN_KEY = "Free mode needs X-Api-Key to be one of this server's CLIENT_API_KEYS"


class IdentityPolicy:
    """Turns a request's scope and headers into a `Caller`, as the settings say."""

    def __init__(
        self,
        settings: Settings,
        keys: Callable[[], KeyStore] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = settings.identity_source
        self._allow_anonymous = settings.allow_anonymous
        self._known_keys = frozenset(key_fingerprint(k) for k in settings.client_key_list())
        self._keys = keys
        self._clock = clock

    async def identify(self, scope: Scope, headers: dict[bytes, bytes]) -> Caller:
        """The caller, or `AuthenticationException` for a refused or missing credential."""
        caller = _from_gateway(scope, headers, trust_header=self._source == "gateway")
        if caller is None and self._source == "client_key":
            caller = await self._from_client_key(headers.get(b"x-api-key"))
        if caller is not None and caller.policy is not None:
            _refuse_expired(caller.policy, self._clock())
        if caller is not None:
            return caller
        if not self._allow_anonymous:
            raise AuthenticationException(
                "This server does not serve anonymous callers: send your API key in X-Api-Key",
                code="client_credential_required",
                param="X-Api-Key",
            )
        refusal = _GATEWAY_ONLY if self._source == "gateway" else self._local_refusal()
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        return Caller(ANONYMOUS_CALLER.owner, free_mode_refusal=refusal, peer=peer)

    async def _from_client_key(self, raw: bytes | None) -> Caller | None:
        if not raw:
            return None
        value = raw.decode("latin-1")
        fingerprint = key_fingerprint(value)
        if fingerprint in self._known_keys:
            return Caller(f"key:{fingerprint}", known=True)
        # keys' module loads with the first gateway key (its dataclasses cost a cold start)
        from llm_server.keys.records import looks_like_secret

        if looks_like_secret(value) and self._keys is not None:
            return await self._gateway_key(value)
        if not self._known_keys:
            return Caller(f"key:{fingerprint}", free_mode_refusal=_NO_CLIENT_KEYS)
        raise _refused("invalid_client_key")

    async def _gateway_key(self, secret: str) -> Caller:
        """The caller of a gateway key, looked up by its hash; 401 unless it works now."""
        from llm_server.keys.records import secret_hash

        assert self._keys is not None
        hashed = secret_hash(secret)
        key = await asyncio.to_thread(self._keys().find, hashed)
        refusal = "invalid_client_key" if key is None else key.refusal(hashed, self._clock())
        if key is None or refusal is not None:
            raise _refused(refusal or "invalid_client_key")
        return Caller(key.owner, known=True, policy=key.policy)

    def _local_refusal(self) -> str:
        if not self._known_keys:
            return _NO_CLIENT_KEYS
        return _UNKNOWN_KEY


_REFUSALS = {
    "invalid_client_key": "X-Api-Key is not one of this server's client keys",
    "key_revoked": "This key was revoked: ask the operator for a new one",
    "key_expired": "This key has expired: ask the operator to extend it or for a new one",
}


def _refused(code: str) -> AuthenticationException:
    return AuthenticationException(_REFUSALS[code], code=code, param="X-Api-Key")


def _refuse_expired(policy: KeyPolicy, now: float) -> None:
    if policy.expires_at is not None and policy.expires_at <= now:
        raise _refused("key_expired")


def _from_gateway(scope: Scope, headers: dict[bytes, bytes], trust_header: bool) -> Caller | None:
    """The gateway-validated identity in the Lambda event (or the adapter's header), if any.

    The gateway's key authorizer's context first: with API Gateway API keys kept as an edge
    throttle, the event carries an API key id too, which is not the identity then.
    """
    event: dict[str, Any] = scope.get("aws.event") or {}
    context = event.get("requestContext")
    if context is None and trust_header and b"x-amzn-request-context" in headers:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            context = json.loads(headers[b"x-amzn-request-context"])
    if not isinstance(context, dict):
        return None
    authorizer = context.get("authorizer")
    owner, policy = _path(authorizer, "owner"), _path(authorizer, "policy")
    if owner and policy and _path(authorizer, "key_id"):
        from llm_server.keys.records import KeyPolicy

        return Caller(owner, known=True, policy=KeyPolicy.from_json(policy))
    key_id = _path(context, "identity", "apiKeyId")
    if key_id:
        return Caller(f"apikey:{key_id}", known=True)
    principal = next(filter(None, (_path(authorizer, *path) for path in PRINCIPALS)), None)
    if principal:
        return Caller(f"principal:{key_fingerprint(principal)}", known=True)
    return None


PRINCIPALS = (
    ("principalId",),  # a REST API's Lambda authorizer
    ("claims", "sub"),  # a REST API's Cognito authorizer
    ("jwt", "claims", "sub"),  # an HTTP API's JWT authorizer
    ("lambda", "principalId"),  # an HTTP API's Lambda authorizer: its context names the caller
    ("lambda", "sub"),
    ("lambda", "tenant_id"),
    ("iam", "userArn"),  # an HTTP API's IAM authorization: the signing principal
)
"""Where an authorizer names the caller, first found wins (a fingerprint of it is the owner)."""


def _path(value: Any, *keys: str) -> str | None:
    """`value[k1][k2]...` when every step is a dict and the end is a non-empty string."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value else None
