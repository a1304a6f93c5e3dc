"""The pages the server serves itself: the playground `/`, the API docs `/docs`, keys `/admin`.

The operator's page calls the admin API with the admin key its user types. Everything they
load comes from this server (`/static/...`): Swagger UI from a pinned copy of npm's
swagger-ui-dist that the build puts in `static/swagger-ui` (toolchain/fetch-swagger-ui.sh),
the playground's own HTML, CSS and script. No CDN, so the pages work offline and tell no third
party about a visit. The pages hold nothing secret (the template routes the playground and the
docs publicly, and `/admin` not at all); what they call carries the caller's key like any
client's.

Through API Gateway's own URL a page is at `/{stage}/...` while the app sees `/...`: links in the
pages carry the prefix the gateway removed, so they reach the stage. The pages forbid inline
scripts and other origins (`Content-Security-Policy`); the playground writes replies as text.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from llm_server.core.text import bounded
from llm_server.exceptions import NotFoundException

STATIC = Path(__file__).with_name("static")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Scripts, styles and connections: this origin only (Swagger UI 5 needs no inline style).
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def playground(request: Request) -> HTMLResponse:
    """The chat playground."""
    return _page("playground/index.html", request)


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI, loading the schema from where the caller reached this page."""
    return _page("docs.html", request)


@router.get("/admin")
async def admin(request: Request) -> HTMLResponse:
    """The operator's page: the keys, their policies and spend (the admin API does the rest)."""
    return _page("admin/index.html", request)


@router.get("/static/{path:path}")
async def static(path: str) -> Response:
    """A script or stylesheet of the pages (404 for anything else)."""
    body, media_type = _asset(path)
    return Response(body, media_type=media_type, headers=PAGE_HEADERS)


def _page(name: str, request: Request) -> HTMLResponse:
    prefix = html.escape(gateway_prefix(request.scope.get("aws.event")), quote=True)
    text = _read(name).decode("utf-8").replace("__BASE__", prefix)
    return HTMLResponse(text, headers=PAGE_HEADERS)


def _asset(path: str) -> tuple[bytes, str]:
    """A file the pages load, looked up among those there are.

    A caller's path never reaches the file system: a NUL, a name too long or `..` is just a
    name that is not there.
    """
    media_type = _assets().get(path)
    if media_type is None:
        raise NotFoundException(f"No such file: /static/{bounded(path)}", code="not_found")
    return _read(path), media_type


@lru_cache(maxsize=1)
def _assets() -> dict[str, str]:
    """The scripts and stylesheets under `static/`, by their path there, with their types."""
    return {
        file.relative_to(STATIC).as_posix(): _TYPES[file.suffix]
        for file in STATIC.rglob("*")
        if file.suffix in _TYPES and file.is_file()
    }


@lru_cache(maxsize=16)
def _read(name: str) -> bytes:
    """A static file's bytes, read once per process (the Swagger UI bundle is 1.7 MB)."""
    return (STATIC / name).read_bytes()


def gateway_prefix(event: Any) -> str:
    """The path prefix (stage or base path) API Gateway removed before the app saw the path."""
    if not isinstance(event, dict):
        return ""
    full = (event.get("requestContext") or {}).get("path")
    path = event.get("path")
    if isinstance(full, str) and isinstance(path, str) and full.endswith(path):
        return full[: len(full) - len(path)].rstrip("/")
    return ""
