"""`python -m llm_server.keys`: the operator's CLI, on the local store and against a server."""

import json
import os
import subprocess
import sys

from helpers.gateway_keys import ADMIN_KEY, chat, keyed_app
from helpers.live_server import LiveServer
from helpers.server_process import FUNCTIONS


def cli(*args: str, **env: str) -> tuple[int, list[dict], str]:
    """Run the CLI; its exit code, the JSON objects it printed, and what it logged."""
    done = subprocess.run(
        [sys.executable, "-m", "llm_server.keys", *args],
        env={**os.environ, "PYTHONPATH": str(FUNCTIONS), "LOG_FILE": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=env.get("CWD", "/"),
    )
    decoder, text, objects = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        value, end = decoder.raw_decode(text)
        objects.append(value)
        text = text[end:].strip()
    return done.returncode, objects, done.stderr


def test_the_cli_governs_keys_in_the_local_store_a_server_reads(moto_endpoint, fake, tmp_path):
    app, (settings, _, _) = keyed_app("sqlite", moto_endpoint, fake)
    store = {"STORE_PATH": settings.store_path}
    status, (made,), _ = cli(
        "create",
        "--name",
        "team-a",
        "--models",
        "gpt-4o-mini",
        "--rpm",
        "3",
        "--budget",
        "5",
        "--meta",
        "team=a",
        **store,
    )
    assert status == 0 and made["key"].startswith("llms_") and made["rpm"] == 3
    assert made["metadata"] == {"team": "a"} and made["monthly_budget_usd"] == 5.0
    with LiveServer(app) as server:
        assert chat(server, made["key"]).status_code == 200
        _, (listed,), _ = cli("list", **store)
        assert [k["id"] for k in listed["data"]] == [made["id"]] and "key" not in listed["data"][0]
        _, (shown,), _ = cli("show", made["id"], "--days", "3", **store)
        assert shown["requests"] == 1 and len(shown["daily"]) == 3
        _, (changed,), _ = cli("update", made["id"], "--rpm", "none", "--models", "all", **store)
        assert changed["rpm"] is None and changed["models"] is None
        _, (rotated,), _ = cli("rotate", made["id"], **store)
        assert chat(server, made["key"]).status_code == 401
        assert chat(server, rotated["key"]).status_code == 200
        _, (revoked,), logged = cli("revoke", made["id"], **store)
        assert revoked["status"] == "revoked" and chat(server, rotated["key"]).status_code == 401
    assert '"actor":"admin key@cli:' in logged and '"admin_action":"revoke"' in logged
    assert made["key"] not in logged and rotated["key"] not in logged


def test_a_bad_value_exits_1_with_the_error_naming_the_field(tmp_path):
    status, (answer,), _ = cli(
        "create", "--name", "x", "--rpm", "0", STORE_PATH=str(tmp_path / "s.db")
    )
    assert status == 1 and answer["error"]["param"] == "rpm"


def test_the_cli_calls_a_servers_admin_api_with_the_admin_key(moto_endpoint, fake):
    app, _ = keyed_app("sqlite", moto_endpoint, fake)
    with LiveServer(app) as server:
        status, (made,), _ = cli(
            "--url",
            server.url,
            "create",
            "--name",
            "team-b",
            "--tpm",
            "5000",
            ADMIN_API_KEY=ADMIN_KEY,
        )
        assert status == 0 and made["tpm"] == 5000
        assert chat(server, made["key"]).status_code == 200
        refused, (answer,), _ = cli("--url", server.url, "list", ADMIN_API_KEY="wrong")
    assert refused == 1 and answer["error"]["code"] == "invalid_admin_key"
