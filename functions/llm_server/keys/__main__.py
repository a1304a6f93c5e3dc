"""The operator's key CLI: `python -m llm_server.keys <command>` (`make keys ARGS="..."`).

Every command is a request of the admin API (`/admin/v1/keys`), and prints its JSON answer:
- with `--url`, to that server: `Authorization: Bearer $ADMIN_API_KEY` locally, or with
  `--sigv4` signed with your AWS credentials for a deployed stack's IAM-authorised routes (who
  you are is what its log says);
- without, to the admin routes run in this process over the store the settings name (the local
  SQLite file; or `STORE=dynamodb DYNAMODB_TABLE=...` with your AWS credentials), logged as
  `cli:<your user name>`. This is how keys are imported before a stack has an admin API.

`import-api-gateway` imports a REST API's API Gateway keys as gateway keys with the same value
and the owner id they had (`apikey:<id>`), so their tenants keep working and keep their usage
(docs/keys.md).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import secrets
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx

ROUTE = "/admin/v1/keys"


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit 0 when every request it made succeeded."""
    args = _parser().parse_args(argv)
    calls = _calls(args)
    send = _remote(args.url, args.sigv4) if args.url else _in_process()
    answers = asyncio.run(send(calls))
    failed = False
    for status, body in answers:
        failed |= status >= 400
        print(json.dumps(body, indent=2, ensure_ascii=False))
    return 1 if failed else 0


Call = tuple[str, str, dict[str, Any] | None]  # method, path (with its query), JSON body


def _calls(args: argparse.Namespace) -> list[Call]:
    """The admin API requests a command makes."""
    key = f"{ROUTE}/{getattr(args, 'id', '')}"
    if args.command == "create":
        return [("POST", ROUTE, {"name": args.name, **_policy(args)})]
    if args.command == "list":
        return [("GET", f"{ROUTE}?limit={args.limit}&after={args.after}", None)]
    if args.command == "show":
        return [("GET", f"{key}?days={args.days}", None)]
    if args.command == "update":
        return [("PATCH", key, _policy(args) | ({"name": args.name} if args.name else {}))]
    if args.command == "rotate":
        return [("POST", f"{key}/rotate", {"grace_seconds": args.grace})]
    if args.command == "revoke":
        return [("DELETE", key, None)]
    return [("POST", ROUTE, body) for body in _api_gateway_keys(args.rest_api_id)]


def _policy(args: argparse.Namespace) -> dict[str, Any]:
    """The policy fields a create or update names (`none` clears a limit)."""
    body: dict[str, Any] = {}
    if args.models is not None:
        body["models"] = None if args.models == "all" else args.models.split(",")
    for name in ("rpm", "tpm", "monthly_budget_usd", "expires_at"):
        value = getattr(args, name)
        if value is not None:
            body[name] = None if value == "none" else value
    if args.paid_models is not None:
        body["paid_models"] = args.paid_models == "yes"
    if args.meta:
        body["metadata"] = dict(item.partition("=")[::2] for item in args.meta)
    return body


def _api_gateway_keys(rest_api_id: str) -> list[dict[str, Any]]:
    """Each API key in a usage plan of the REST API, as a key to import (value and owner)."""
    from llm_server.utils import aws

    gateway = aws.client("apigateway")
    plans = gateway.get_usage_plans(limit=500)["items"]
    ours = [p["id"] for p in plans if any(s["apiId"] == rest_api_id for s in p["apiStages"])]
    ids = {k["id"] for plan in ours for k in gateway.get_usage_plan_keys(usagePlanId=plan)["items"]}
    keys = gateway.get_api_keys(includeValues=True, limit=500)["items"]
    return [
        {"name": key["name"][:100], "secret": key["value"], "owner": f"apikey:{key['id']}"}
        for key in keys
        if key["id"] in ids
    ]


Sender = Any  # async (list[Call]) -> list[(status, body)]


def _remote(url: str, sigv4: bool) -> Sender:
    """Requests to a server: a bearer admin key, or SigV4 for execute-api."""

    async def send(calls: list[Call]) -> list[tuple[int, Any]]:
        async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=60) as client:
            answers = []
            for method, path, body in calls:
                content = json.dumps(body).encode() if body is not None else b""
                headers = {"content-type": "application/json"} if body is not None else {}
                full = f"{url.rstrip('/')}{path}"
                headers |= _signed(method, full, content) if sigv4 else _bearer()
                answer = await client.request(method, full, content=content, headers=headers)
                answers.append((answer.status_code, answer.json()))
            return answers

    return send


def _bearer() -> dict[str, str]:
    key = os.environ.get("ADMIN_API_KEY", "")
    if not key:
        raise SystemExit("set ADMIN_API_KEY (or --sigv4 for a deployed stack)")
    return {"authorization": f"Bearer {key}"}


def _signed(method: str, url: str, content: bytes) -> dict[str, str]:
    """SigV4 headers for API Gateway's `execute-api`, with the caller's AWS credentials."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    from llm_server.utils import aws

    session = aws.session()
    region = session.get_config_variable("region") or _region_of(url)
    request = AWSRequest(method, url, data=content, headers={"host": urlsplit(url).netloc})
    if content:
        request.headers["content-type"] = "application/json"
    SigV4Auth(session.get_credentials(), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def _region_of(url: str) -> str:
    """The region of an execute-api host (`id.execute-api.<region>.amazonaws.com`)."""
    parts = urlsplit(url).netloc.split(".")
    return parts[2] if len(parts) > 3 and parts[1] == "execute-api" else "us-east-1"


def _in_process() -> Sender:
    """Requests to the admin routes run here, over the store the settings name."""
    from fastapi import FastAPI

    from llm_server.admin_api.errors import ADMIN_ERRORS
    from llm_server.admin_api.routes import router
    from llm_server.config.settings import load_settings
    from llm_server.keys.admin import KeyAdmin
    from llm_server.stores.factory import key_store, usage_store
    from llm_server.usage.ledger import UsageLedger
    from llm_server.utils.log import logger
    from llm_server.web.errors import ErrorShapes, install_error_handlers

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)  # stdout is the answers'
    token = secrets.token_urlsafe(32)
    settings = load_settings(admin_api_key=token, admin_iam=False, log_file="")
    ledger = UsageLedger.from_settings(settings, usage_store(settings))
    app = FastAPI()
    app.state.settings = settings
    app.state.key_admin = KeyAdmin(key_store(settings), ledger)
    app.include_router(router)
    install_error_handlers(app, ErrorShapes(ADMIN_ERRORS))
    transport = httpx.ASGITransport(app, client=(f"cli:{getpass.getuser()}", 0))

    async def send(calls: list[Call]) -> list[tuple[int, Any]]:
        async with httpx.AsyncClient(transport=transport, base_url="http://cli") as client:
            headers = {"authorization": f"Bearer {token}"}
            answers = []
            for method, path, body in calls:
                answer = await client.request(method, path, json=body, headers=headers)
                answers.append((answer.status_code, answer.json()))
            return answers

    return send


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a server's base URL (default: this machine's store)")
    parser.add_argument("--sigv4", action="store_true", help="sign for a deployed stack (IAM)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new key (its secret is printed once)")
    create.add_argument("--name", required=True)
    _policy_options(create)
    listing = commands.add_parser("list", help="keys, a page at a time")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--after", default="", help="the `next` cursor of the page before")
    show = commands.add_parser("show", help="one key, with this month's spend and each day's")
    show.add_argument("id")
    show.add_argument("--days", type=int, default=30)
    update = commands.add_parser("update", help="change a key's policy, name or metadata")
    update.add_argument("id")
    update.add_argument("--name")
    _policy_options(update)
    rotate = commands.add_parser("rotate", help="a new secret (printed once)")
    rotate.add_argument("id")
    rotate.add_argument("--grace", type=int, default=0, help="seconds the old secret still works")
    revoke = commands.add_parser("revoke", help="revoke a key: every secret of it stops")
    revoke.add_argument("id")
    imported = commands.add_parser(
        "import-api-gateway", help="import a REST API's API Gateway keys (migration)"
    )
    imported.add_argument("--rest-api-id", required=True)
    return parser


def _policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", help="comma-separated models, or `all`")
    parser.add_argument("--rpm", help="requests a minute, or `none`")
    parser.add_argument("--tpm", help="tokens a minute, or `none`")
    parser.add_argument("--budget", dest="monthly_budget_usd", help="USD a month, or `none`")
    parser.add_argument("--expires", dest="expires_at", help="RFC 3339 time, or `none`")
    parser.add_argument("--paid-models", choices=("yes", "no"), help="may the operator pay")
    parser.add_argument("--meta", action="append", metavar="NAME=VALUE", help="metadata")


if __name__ == "__main__":
    sys.exit(main())
