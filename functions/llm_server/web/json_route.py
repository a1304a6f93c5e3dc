"""A route class for the hot JSON endpoints: the body validated straight from its bytes.

FastAPI's request handler decodes a body to Python objects, parses its Content-Type with the
`email` package, validates the objects, solves the endpoint's dependencies and wraps each step
in its telemetry and exit stacks: a fifth of a warm Lambda chat's overhead here (see
bench/README.md, "The chat route without FastAPI's request handler"). An endpoint routed with
`JSONBodyRoute` takes only its body model and the `Request` (what it needs of the app it reads
from the request), so its body is validated by pydantic's JSON mode in one pass and the endpoint
called with it. Its signature still gives OpenAPI its schema; its errors are FastAPI's own
`RequestValidationError`, located under `body` as FastAPI locates them, rendered as before.
The middleware has already refused a body that is too large, not JSON or not encodable.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, ValidationError

Check = Callable[[Request], Awaitable[object]]


class JSONBodyRoute(APIRoute):
    """An `APIRoute` for an `async def endpoint(body: SomeModel, request: Request)`.

    `check` looks at the request before its body is read (`post_json(first=...)`): as FastAPI
    ran an endpoint's dependencies before validating its body, a caller refused there gets its
    refusal whatever the body holds, and costs no validation.
    """

    async def check(self, request: Request) -> None:
        """Nothing to check before the body, unless `post_json` was given something."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Validate the body from its bytes and call the endpoint with it and the request."""
        dependant = self.dependant
        extra = (dependant.dependencies, dependant.query_params, dependant.header_params)
        if len(dependant.body_params) != 1 or not dependant.request_param_name or any(extra):
            raise TypeError(f"{self.path}: a JSONBodyRoute takes one body model and the Request")
        body_name, request_name = dependant.body_params[0].name, dependant.request_param_name
        model = dependant.body_params[0].field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{self.path}: a JSONBodyRoute's body is a pydantic model")
        endpoint, check = self.endpoint, self.check

        async def handle(request: Request) -> Response:
            await check(request)
            raw = await request.body()
            if not raw:
                missing = {"type": "missing", "loc": ("body",), "msg": "Field required"}
                raise RequestValidationError([missing], body=None)
            try:
                body = model.model_validate_json(raw)
            except ValidationError as exc:
                body = _from_python(model, raw, exc)
            response: Response = await endpoint(**{body_name: body, request_name: request})
            return response

        return handle


def post_json(
    router: APIRouter, path: str, first: Check | None = None, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`@router.post(path, **options)`, routed as a `JSONBodyRoute` checking `first` first."""
    route = JSONBodyRoute if first is None else _checking(first)

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(
            path, endpoint, methods=["POST"], route_class_override=route, **options
        )
        return endpoint

    return register


def _checking(first: Check) -> type[JSONBodyRoute]:
    class CheckedRoute(JSONBodyRoute):
        async def check(self, request: Request) -> None:
            await first(request)

    return CheckedRoute


def _from_python(model: type[BaseModel], raw: bytes, exc: ValidationError) -> BaseModel:
    """The body validated as FastAPI would (from Python objects), or FastAPI's refusal of it.

    Pydantic's JSON parser refuses JSON nested deeper than 200 levels, which Python's reads: a
    route's own checks (a schema too deep to follow) must still see it and name its field.
    """
    if exc.errors()[0]["type"] == "json_invalid" and (parsed := _parsed(raw)) is not None:
        try:
            return model.model_validate(parsed)
        except ValidationError as python_exc:
            exc = python_exc
    raise _refusal(exc, raw) from None


def _refusal(exc: ValidationError, raw: bytes) -> Exception:
    """What FastAPI raises for this body: a 400 for bytes that are not UTF-8, else its errors."""
    try:
        raw.decode()
    except UnicodeDecodeError:
        return HTTPException(status_code=400, detail="There was an error parsing the body")
    return RequestValidationError(_located(exc), body=_parsed(raw))


def _located(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors, each located under `body` as FastAPI's are."""
    return [
        {
            **error,
            "loc": error["loc"] if error["type"] == "json_invalid" else ("body", *error["loc"]),
        }
        for error in exc.errors(include_url=False)
    ]


def _parsed(raw: bytes) -> Any:
    """The body as JSON, for the error to echo what it can of it (None if it is not JSON)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None
