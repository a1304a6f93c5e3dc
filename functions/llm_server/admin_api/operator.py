"""Who may call the admin API: the operator, and nobody else.

- Locally, `Authorization: Bearer <ADMIN_API_KEY>` (compared in constant time); with no
  `ADMIN_API_KEY` the admin API does not exist (404).
- On AWS (`ADMIN_IAM=true`, which the template sets), the admin routes use `AWS_IAM`
  authorization: API Gateway has checked the caller's SigV4 signature and its
  `execute-api:Invoke` grant before the function runs, and the event names the principal
  (`requestContext.identity.userArn`). Only the Lambda event counts (never a header), and never
  a request an authorizer let in (a tenant's).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Request

from llm_server.exceptions import AuthenticationException, NotFoundException, PermissionException

ADMIN_KEY = "admin key"


async def get_operator(request: Request) -> str:
    """The operator calling (who did it, for the log), or a 401, 403 or 404."""
    settings = request.app.state.settings
    admin_key = settings.admin_api_key.get_secret_value()
    if settings.admin_iam:
        principal = _iam_principal(request.scope.get("aws.event"))
        if principal:
            return f"iam:{principal}"
        if not admin_key:
            raise PermissionException(
                "The admin API takes IAM-signed requests only (execute-api:Invoke on its routes)",
                code="admin_forbidden",
            )
    if not admin_key:
        raise NotFoundException("There is no admin API on this server (ADMIN_API_KEY is unset)")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    sent = token.strip().encode("latin-1") if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(sent, admin_key.encode("latin-1")):
        raise AuthenticationException(
            "The admin API needs Authorization: Bearer <ADMIN_API_KEY>",
            code="invalid_admin_key",
            param="Authorization",
        )
    client = request.scope.get("client")
    return f"{ADMIN_KEY}@{client[0]}" if client else ADMIN_KEY


def _iam_principal(event: Any) -> str:
    """The IAM principal API Gateway verified for an AWS_IAM method ("" for anything else)."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    if not isinstance(context, dict) or context.get("authorizer"):
        return ""
    identity = context.get("identity")
    arn = identity.get("userArn") if isinstance(identity, dict) else None
    return arn if isinstance(arn, str) else ""
