"""Routers imported on the first request that needs one, not when the app is built.

On Lambda every cold start imports the app, and declaring a FastAPI route builds its
validators: each API's routes, schemas and helpers cost a cold start tens of milliseconds
whether or not the request is one of theirs. `include_lazily` puts a stand-in route for each
group of routers after the routes that are always there (system info, health), matching the
path prefixes the group serves (a group without prefixes: any path): the first request one
matches imports its modules, includes their routers in its place and is routed again, so a
chat's cold start loads its API's routes and no other's. The OpenAPI schema includes them all
(building it loads them first); a long-lived server loads them before its first request.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI


LazyGroup = tuple[tuple[str, ...], tuple[str, ...]]  # path prefixes, modules with a `router`


class LazyRouters(BaseRoute):
    """Stands for the routers of `modules` (each module's `router`) until one is needed."""

    def __init__(self, app: FastAPI, prefixes: Sequence[str], modules: Sequence[str]) -> None:
        self._app = app
        self._prefixes = tuple(prefixes)
        self._modules = tuple(modules)
        self._loaded = False

    def load(self) -> None:
        """Import the modules and put their routes where this one stands (once)."""
        if self._loaded:
            return
        self._loaded = True
        routes = self._app.router.routes
        at = routes.index(self)
        routes.remove(self)
        before = len(routes)
        for name in self._modules:
            self._app.include_router(importlib.import_module(name).router)
        added = routes[before:]
        del routes[before:]
        routes[at:at] = added

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """A request on one of its prefixes (any, without) that the routes before it left."""
        ours = scope["type"] in ("http", "websocket") and (
            not self._prefixes or scope["path"].startswith(self._prefixes)
        )
        return (Match.FULL, {}) if ours else (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Load the routers, then route the request again, among them."""
        self.load()
        await self._app.router(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Reverse routing reaches the routes once they are loaded, not this stand-in."""
        raise NoMatchFound(name, path_params)


def include_lazily(app: FastAPI, groups: Sequence[LazyGroup]) -> Callable[[], None]:
    """Stand in for each group's routers after the app's routes so far (see the module).

    Returns what loads them all (a long-lived server's start, Lambda's init ahead of traffic).
    """
    stand_ins = [LazyRouters(app, prefixes, modules) for prefixes, modules in groups]
    app.router.routes.extend(stand_ins)
    build_schema = app.openapi

    def load_all() -> None:
        for lazy in stand_ins:
            lazy.load()

    def openapi() -> dict[str, Any]:
        load_all()
        return build_schema()

    app.openapi = openapi  # type: ignore[method-assign]
    return load_all
