"""The operator's side of the gateway's keys, as tests drive it: the admin API over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from helpers.tenants import tenant_app
from llm_server.keys.admin import KeyAdmin
from llm_server.web.identity import IdentityPolicy

ADMIN_KEY = "admin-key-" + "a" * 40
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def keyed_app(kind, moto_endpoint, fake, *, clock: Callable[[], float] | None = None, **kw: Any):
    """`tenant_app` with the admin API on (ADMIN_KEY); `clock` also drives keys' expiry and
    rotations' grace periods."""
    kw.setdefault("admin_api_key", ADMIN_KEY)
    app, shared = tenant_app(kind, moto_endpoint, fake, **({"clock": clock} if clock else {}), **kw)
    if clock is not None:
        services = app.state.services
        app.state.identity = IdentityPolicy(shared[0], keys=lambda: services.keys, clock=clock)
        app.state.key_admin = KeyAdmin(services.keys, services.usage, clock)
    return app, shared


def admin(server, method: str, path: str, **kw: Any) -> httpx.Response:
    """A request of the admin API, as the operator."""
    return httpx.request(method, f"{server.url}/admin/v1{path}", headers=ADMIN, timeout=30, **kw)


def create_key(server, name: str = "team-a", **policy: Any) -> dict[str, Any]:
    """A new key with `policy`: its view, with its secret in `key`."""
    made = admin(server, "POST", "/keys", json={"name": name, **policy})
    assert made.status_code == 201, made.text
    return made.json()


def chat(server, key: str, **fields: Any) -> httpx.Response:
    """`POST /api/v1/chat` with the gateway key `key` (free mode unless told otherwise)."""
    body = {"user_message": "hello", "free_mode": True, **fields}
    return httpx.post(
        f"{server.url}/api/v1/chat", json=body, headers={"X-Api-Key": key}, timeout=30
    )


def code(response: httpx.Response) -> str:
    """An error answer's `error.code`."""
    return response.json()["error"]["code"]
