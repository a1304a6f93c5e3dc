"""A stack deployed from the release before gateway keys (its tenants' identity the API Gateway
API key) upgrades without losing a tenant's usage or locking it out: the operator imports the API
keys as gateway keys (same value, same owner id), then deploys (docs/keys.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from e2e.conftest import SECRET, deployed, parameters
from helpers.aws_emulator import BUILD, CREDENTIALS, REGION, built_from, signed, update

BEFORE_KEYS = "458bcef"  # the last release whose tenants were API Gateway keys


def old_template(tmp_path) -> object:
    text = subprocess.run(
        ["git", "show", f"{BEFORE_KEYS}:template.yaml"],
        capture_output=True,
        text=True,
        check=True,
        cwd=BUILD.parents[1],
    ).stdout
    return built_from(text, BUILD / f"before-keys-{tmp_path.name}.yaml")


def tenant(stack, method: str, path: str, **kw) -> httpx.Response:
    headers = {"x-api-key": stack.api_key}
    return httpx.request(method, f"{stack.api}{path}", headers=headers, timeout=60, **kw)


def chat(stack) -> httpx.Response:
    return tenant(stack, "POST", "/api/v1/chat", json={"user_message": "hi", "free_mode": True})


def import_keys(stack) -> subprocess.CompletedProcess:
    """The operator's step: `python -m llm_server.keys import-api-gateway`, on its credentials,
    straight into the stack's table (the old stack has no admin API)."""
    api_id = stack.outputs["ApiUrl"].split("//")[1].split(".")[0]
    env = {
        **os.environ,
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": stack.endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "STORE": "dynamodb",
        "DYNAMODB_TABLE": stack.outputs["TableName"],
        "LOG_FILE": "",
    }
    command = [sys.executable, "-m", "llm_server.keys", "import-api-gateway"]
    return subprocess.run(
        [*command, "--rest-api-id", api_id], env=env, capture_output=True, text=True, timeout=120
    )


def test_api_key_tenants_keep_their_usage_and_access_across_the_upgrade(
    endpoint, upstream, tmp_path
):
    before = {
        name: value for name, value in parameters(SECRET).items() if name != "KeyCacheSeconds"
    }
    before["TenantMonthlyBudgetUSD"] = "10"
    source = old_template(tmp_path)
    try:
        with deployed(endpoint, upstream, before, source) as stack:
            assert [chat(stack).status_code for _ in range(2)] == [200, 200]
            old = tenant(stack, "GET", "/api/v1/usage").json()
            assert old["owner"].startswith("apikey:") and old["by_model"][0]["requests"] == 2

            imported = import_keys(stack)
            assert imported.returncode == 0, imported.stdout + imported.stderr
            assert stack.api_key not in imported.stdout  # only the key's prefix is shown
            again = import_keys(stack)  # twice: nothing more, and it says so
            assert again.returncode == 1 and '"key_exists"' in again.stdout

            update(
                stack,
                {**parameters(SECRET), "TenantMonthlyBudgetUSD": "10"},
                {"OPENAI_BASE_URL": upstream.url},
            )
            assert stack.client("apigateway").get_usage_plans()["items"] == []  # gone
            assert chat(stack).status_code == 200  # the same x-api-key, now the authorizer's
            new = tenant(stack, "GET", "/api/v1/usage").json()
            assert new["owner"] == old["owner"]
            assert new["by_model"][0]["requests"] == 3 and new["budget_usd"] == 10
            assert new["cost_usd"] > old["cost_usd"] and new["remaining_usd"] < old["remaining_usd"]
            (key,) = signed(stack, "GET", "/admin/v1/keys").json()["data"]
            assert key["owner"] == old["owner"] and key["requests"] == 3
    finally:
        source.unlink(missing_ok=True)
