"""Identify the caller of a request, from sources an attacker cannot set.

- A Lambda event's `requestContext` (Mangum puts it in the ASGI scope): API Gateway's validated
  API key id, or an authorizer's principal. Always trusted: only Lambda's runtime writes it.
- `IDENTITY_SOURCE=gateway` (the deployed functions): behind the Lambda Web Adapter the same
  context arrives in the `x-amzn-request-context` header, which the adapter sets. Nothing else.
- `IDENTITY_SOURCE=client_key` (the local server): the key in `X-Api-Key`, kept as a hash. With
  `CLIENT_API_KEYS` set, only those keys are accepted, and they are known (may use free mode).
  The `x-amzn-request-context` header is ignored: over plain HTTP anyone can send it.

Without any of these the caller is anonymous, which `ALLOW_ANONYMOUS=false` refuses.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from starlette.types import Scope

from llm_server.config.settings import Settings
from llm_server.core.caller import ANONYMOUS_CALLER, Caller
from llm_server.exceptions import AuthenticationException
from llm_server.utils.redact import key_fingerprint

_GATEWAY_ONLY = "Free mode needs an API Gateway API key; this request came without one"
_NO_CLIENT_KEYS = (
    "Free mode is refused on this server: it has no CLIENT_API_KEYS to identify clients by"
)
_UNKNOWN_KEY = "Free mode needs X-Api-Key to be one of this server's CLIENT_API_KEYS"


class IdentityPolicy:
    """Turns a request's scope and headers into a `Caller`, as the settings say."""

    def __init__(self, settings: Settings) -> None:
        self._source = settings.identity_source
        self._allow_anonymous = settings.allow_anonymous
        self._known_keys = frozenset(key_fingerprint(k) for k in settings.client_key_list())

    def identify(self, scope: Scope, headers: dict[bytes, bytes]) -> Caller:
        """The caller, or `AuthenticationException` for a refused or missing credential."""
        caller = _from_gateway(scope, headers, trust_header=self._source == "gateway")
        if caller is None and self._source == "client_key":
            caller = self._from_client_key(headers.get(b"x-api-key"))
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

    def _from_client_key(self, raw: bytes | None) -> Caller | None:
        if not raw:
            return None
        fingerprint = key_fingerprint(raw.decode("latin-1"))
        if not self._known_keys:
            return Caller(f"key:{fingerprint}", free_mode_refusal=_NO_CLIENT_KEYS)
        if fingerprint not in self._known_keys:
            raise AuthenticationException(
                "X-Api-Key is not one of this server's client keys",
                code="invalid_client_key",
                param="X-Api-Key",
            )
        return Caller(f"key:{fingerprint}", known=True)

    def _local_refusal(self) -> str:
        if not self._known_keys:
            return _NO_CLIENT_KEYS
        return _UNKNOWN_KEY


def _from_gateway(scope: Scope, headers: dict[bytes, bytes], trust_header: bool) -> Caller | None:
    """The gateway-validated identity in the Lambda event (or the adapter's header), if any."""
    event: dict[str, Any] = scope.get("aws.event") or {}
    context = event.get("requestContext")
    if context is None and trust_header and b"x-amzn-request-context" in headers:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            context = json.loads(headers[b"x-amzn-request-context"])
    if not isinstance(context, dict):
        return None
    key_id = _path(context, "identity", "apiKeyId")
    if key_id:
        return Caller(f"apikey:{key_id}", known=True)
    authorizer = context.get("authorizer")
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
