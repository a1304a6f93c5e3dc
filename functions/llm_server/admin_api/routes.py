"""`/admin/v1/keys`: the operator creates, lists, reads, changes, rotates and revokes keys.

HTTP to `KeyAdmin` (`keys/admin.py`) and back; who may call is `operator.py`'s. A key's view
carries this month's spend (what the operator paid for its turns) and tokens; a secret is in
the answer that made it, once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from llm_server.admin_api.operator import get_operator
from llm_server.admin_api.schemas import (
    AdminError,
    CreateKey,
    DailySpend,
    IssuedKey,
    KeyDetail,
    KeyList,
    KeyView,
    PolicyFields,
    RotateKey,
    key_view,
)
from llm_server.keys.admin import KeyAdmin
from llm_server.keys.records import GatewayKey, KeyPolicy
from llm_server.usage.pricing import usd

router = APIRouter(prefix="/admin/v1", tags=["admin"])

Operator = Annotated[str, Depends(get_operator)]
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{20}$", description="The key's id")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": AdminError} for status in (401, 403, 404, 409, 422, 503)
}


async def get_admin(request: Request) -> KeyAdmin:
    """The key admin of the app's key store and ledger, made on first use."""
    admin: KeyAdmin | None = getattr(request.app.state, "key_admin", None)
    if admin is None:
        services = request.app.state.services
        admin = request.app.state.key_admin = KeyAdmin(services.keys, services.usage)
    return admin


Admin = Annotated[KeyAdmin, Depends(get_admin)]


async def _view(admin: KeyAdmin, key: GatewayKey) -> dict[str, Any]:
    return key_view(key, await admin.spend(key), time.time())


@router.post("/keys", status_code=201, response_model=IssuedKey, responses=_ERRORS)
async def create_key(body: CreateKey, operator: Operator, admin: Admin) -> dict[str, Any]:
    """A new key with its policy; its secret is in `key`, shown this once."""
    policy = body.policy(KeyPolicy())
    key, secret = await admin.create(
        operator, body.name, policy, body.metadata or {}, body.owner, body.secret
    )
    return {**await _view(admin, key), "key": None if body.secret else secret}


@router.get("/keys", response_model=KeyList, responses=_ERRORS)
async def list_keys(
    operator: Operator,
    admin: Admin,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    after: Annotated[str, Query(pattern=r"^([0-9a-f]{20})?$")] = "",
) -> dict[str, Any]:
    """Keys in the order they were made, a page at a time, with this month's spend each."""
    keys, cursor = await admin.page(after, limit)
    views = await asyncio.gather(*(_view(admin, key) for key in keys))
    return {"data": views, "next": cursor or None}


@router.get("/keys/{key_id}", response_model=KeyDetail, responses=_ERRORS)
async def read_key(
    key_id: KeyId,
    operator: Operator,
    admin: Admin,
    days: Annotated[int, Query(ge=1, le=90)] = 30,
) -> dict[str, Any]:
    """One key: its policy, this month's spend and tokens, and its spend each of `days` days."""
    key = await admin.get(key_id)
    daily = await admin.daily(key, days)
    points = [DailySpend(day=day, spend_usd=usd(pico)) for day, pico in daily]
    return {**await _view(admin, key), "daily": points}


@router.patch("/keys/{key_id}", response_model=KeyView, responses=_ERRORS)
async def update_key(
    key_id: KeyId, body: PolicyFields, operator: Operator, admin: Admin
) -> dict[str, Any]:
    """Change any policy field, the name or the metadata (absent: unchanged; null: no limit)."""

    def change(key: GatewayKey) -> GatewayKey:
        fields = body.model_fields_set
        return replace(
            key,
            policy=body.policy(key.policy),
            name=body.name if "name" in fields and body.name else key.name,
            metadata=key.metadata if body.metadata is None else body.metadata,
        )

    return await _view(admin, await admin.update(operator, key_id, change))


@router.post("/keys/{key_id}/rotate", response_model=IssuedKey, responses=_ERRORS)
async def rotate_key(
    key_id: KeyId, operator: Operator, admin: Admin, body: RotateKey | None = None
) -> dict[str, Any]:
    """A new secret (in `key`, shown once); the old one stops, or after `grace_seconds`."""
    grace = body.grace_seconds if body is not None else 0
    key, secret = await admin.rotate(operator, key_id, grace)
    return {**await _view(admin, key), "key": secret}


@router.delete("/keys/{key_id}", response_model=KeyView, responses=_ERRORS)
async def revoke_key(key_id: KeyId, operator: Operator, admin: Admin) -> dict[str, Any]:
    """Revoke the key: every secret of it stops (its record and usage stay)."""
    return await _view(admin, await admin.revoke(operator, key_id))
