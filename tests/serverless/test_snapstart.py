"""SnapStart: what the handler loads before the snapshot, and what each restore renews.

Lambda runs init once per published version, snapshots it, and resumes every new environment
from that copy: these tests call the hooks as the runtime does and check, for each thing a
restored environment must not share, that it is fresh afterwards.
"""

import json
import os
import random
import ssl
import subprocess
import sys

import httpx
import invoke
import pytest

from helpers.aws import CallCounter, secrets_client
from helpers.fakes import FailingProvider
from helpers.lambda_events import EVENTS, emf_blobs, load, value
from helpers.live_server import LiveServer
from helpers.logs import capture_logs
from helpers.settings import make_settings
from helpers.stores import dynamodb_table
from llm_server import lambda_lifecycle
from llm_server.app import Services, create_app
from llm_server.core.server_key import ServerKeyStore
from llm_server.stores.factory import session_store
from llm_server.web.snapstart import add_snapstart_hooks

HOOKS_AS_THE_RUNTIME_CALLS_THEM = f"""
import json, sys
sys.path.insert(0, {str(EVENTS)!r})
import invoke
invoke.use_lambda_environment()
import llm_server.lambda_handler as handler
from snapshot_restore_py import get_after_restore, get_before_snapshot
PRIMED = ("openai", "httpx2", "anyio._backends._asyncio", "botocore.client")
facts = {{
    "before": [(f.__name__, args == (handler.app,)) for f, args, _ in get_before_snapshot()],
    "after": [(f.__name__, args == (handler.app,)) for f, args, _ in get_after_restore()],
    "loaded_at_init": [name for name in PRIMED if name in sys.modules],
}}
for hook, args, kwargs in reversed(get_before_snapshot()):
    hook(*args, **kwargs)
facts["loaded_before_snapshot"] = [name for name in PRIMED if name in sys.modules]
key_store = handler.app.state.services.runner._server_key
facts["secret_cached"] = len(key_store._secrets().store)
print(json.dumps(facts))
"""


def test_the_handler_registers_hooks_that_prime_everything_but_the_secret():
    """In a fresh interpreter, as the runtime imports the handler and runs its hooks."""
    env = {
        **os.environ,
        "LLM_PROVIDER": "openai",
        "STORE": "dynamodb",
        "DYNAMODB_TABLE": "llm-server-snapstart",
        "OPENAI_SECRET_NAME": "llm-server/openai-api-key",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # a read would fail the hook
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)  # on demand until the hook runs
    result = subprocess.run(
        [sys.executable, "-c", HOOKS_AS_THE_RUNTIME_CALLS_THEM],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["before"] == [["prime", True]]
    assert facts["after"] == [["renew", True]]
    assert facts["loaded_at_init"] == []  # on demand, a cold start pays only for what it uses
    # the HTTP client and botocore; never the OpenAI SDK, which no call uses
    primed = ["httpx2", "anyio._backends._asyncio", "botocore.client"]
    assert facts["loaded_before_snapshot"] == primed
    assert facts["secret_cached"] == 0  # the key is never in the snapshot


@pytest.fixture
def app(lambda_env):
    from llm_server.lambda_handler import app

    return app


def test_a_restore_opens_new_connections_to_the_upstream(app, upstream):
    invoke.invoke(load("chat.json"))
    invoke.invoke(load("chat.json"))
    assert upstream.seen[-1].peer == upstream.seen[-2].peer  # a warm environment reuses one
    lambda_lifecycle.renew(app)
    response = invoke.invoke(load("chat.json"))
    assert response["statusCode"] == 200
    assert upstream.seen[-1].peer != upstream.seen[-2].peer


def test_each_restore_reseeds_python_random(app):
    snapshot = random.getstate()  # two environments resumed from one snapshot
    firsts = []
    for _ in range(2):
        random.setstate(snapshot)
        lambda_lifecycle.renew(app)
        firsts.append(random.random())
    assert firsts[0] != firsts[1]
    random.setstate(snapshot)
    unrenewed = random.random()
    random.setstate(snapshot)
    assert random.random() == unrenewed  # what both would have drawn without the hook


def test_each_restore_mixes_fresh_entropy_into_openssl(app, monkeypatch):
    mixed = []
    monkeypatch.setattr(ssl, "RAND_add", lambda data, entropy: mixed.append((data, entropy)))
    lambda_lifecycle.renew(app)
    lambda_lifecycle.renew(app)
    assert [len(data) for data, _ in mixed] == [32, 32] and mixed[0][0] != mixed[1][0]


def test_a_restore_reads_the_server_key_afresh(moto_endpoint):
    client = secrets_client(moto_endpoint)
    name = "llm-server/snapstart-key"
    client.create_secret(Name=name, SecretString="sk-proj-" + "a" * 40)
    reads = CallCounter(client, "GetSecretValue")
    settings = make_settings(openai_secret_name=name, secret_cache_seconds=300)
    key_store = ServerKeyStore(settings, secrets_client=client)
    app = create_app(settings, Services.from_settings(settings, server_key=key_store))
    lambda_lifecycle.prime(app)
    assert reads.count == 0  # priming makes the client, never reads the key
    assert key_store.get().get_secret_value().endswith("a" * 40)
    client.put_secret_value(SecretId=name, SecretString="sk-proj-" + "b" * 40)
    assert key_store.get().get_secret_value().endswith("a" * 40)  # cached for 300 s
    lambda_lifecycle.renew(app)
    assert key_store.get().get_secret_value().endswith("b" * 40)
    assert reads.count == 2


def test_a_restore_makes_the_stores_make_new_clients(app, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    table, _ = dynamodb_table(moto_endpoint)
    store = session_store(make_settings(store="dynamodb", dynamodb_table=table))
    before = store.client
    assert store.client is before
    lambda_lifecycle.renew(app)
    assert store.client is not before
    assert store.client.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"


def test_a_restore_signs_with_the_credentials_the_environment_has_then(
    app, moto_endpoint, monkeypatch
):
    """Each restored environment gets credentials of its own: the snapshot's must not sign."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASNAPSHOTTED")
    table, _ = dynamodb_table(moto_endpoint)
    store = session_store(make_settings(store="dynamodb", dynamodb_table=table))
    assert signed_by(store.client, table) == "AKIASNAPSHOTTED"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIARESTORED")
    lambda_lifecycle.renew(app)
    assert signed_by(store.client, table) == "AKIARESTORED"


def signed_by(client, table: str) -> str:
    """The access key id in the Authorization header of a call `client` sends."""
    sent: list[str] = []

    def record(request, **_):
        sent.append(request.headers["Authorization"].decode())

    client.meta.events.register("before-send.dynamodb.DescribeTable", record)
    client.describe_table(TableName=table)
    return sent[-1].split("Credential=")[1].split("/")[0]


def test_a_restore_makes_the_guardrail_sign_with_the_credentials_of_then(monkeypatch):
    """BEDROCK_GUARDRAIL's client (ApplyGuardrail) is made again, as the providers' are."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASNAPSHOTTED")
    settings = make_settings(bedrock_guardrail="abc123def456:1", bedrock_region="ap-northeast-2")
    app = create_app(
        settings,
        Services.from_settings(settings, local=FailingProvider(AssertionError("not run"), "local")),
    )
    guardrail = app.state.services.runner._guard.guardrail
    before = guardrail._calls.client()
    assert before._request_signer._credentials.access_key == "AKIASNAPSHOTTED"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIARESTORED")
    lambda_lifecycle.renew(app)
    after = guardrail._calls.client()
    assert after is not before
    assert after._request_signer._credentials.access_key == "AKIARESTORED"


def test_the_first_invocation_after_a_restore_is_the_cold_start(app, capsys):
    invoke.invoke(load("system-info.json"))
    warm = json.loads(invoke.invoke(load("system-info.json"))["body"])["lambda"]
    assert warm["cold_start"] is False
    lambda_lifecycle.renew(app)
    capsys.readouterr()
    with capture_logs() as logs:
        restored = json.loads(invoke.invoke(load("system-info.json"))["body"])["lambda"]
    out = capsys.readouterr().out
    assert restored["cold_start"] is True and restored["invocations"] == 1
    assert restored["restored_from_snapshot"] is True
    assert [value(b, "ColdStart") for b in emf_blobs(out) if "ColdStart" in b] == [1]
    assert [r["cold_start"] for r in logs.records() if r["message"] == "request"] == [True]


def test_the_web_adapter_hooks_are_served_only_where_named_and_only_to_the_adapter():
    """The streaming function's hooks, over HTTP as the adapter calls them."""
    named = create_app(make_settings())
    add_snapstart_hooks(
        named,
        {
            "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH": "/_lambda/snapstart/before",
            "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH": "/_lambda/snapstart/after",
        },
    )
    with LiveServer(named) as server, LiveServer(create_app(make_settings())) as unnamed:
        for path in ("/_lambda/snapstart/before", "/_lambda/snapstart/after"):
            assert httpx.post(server.url + path).status_code == 204
            relayed = httpx.post(server.url + path, headers={"x-amzn-request-context": "{}"})
            assert relayed.status_code == 404  # an invocation relayed by the adapter
            assert httpx.post(unnamed.url + path).status_code == 404
        assert "/_lambda" not in json.dumps(httpx.get(server.url + "/openapi.json").json())
