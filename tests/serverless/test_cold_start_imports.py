"""What a cold start loads: each path through the Lambda handler imports only what it needs.

Every heavy import is time a cold start pays, so each test starts a fresh interpreter, as Lambda
does, invokes the real handler once under the deployed settings (DynamoDB store, shared cache,
tracing off) and reads which of the packages that only some paths need ended up in `sys.modules`:
at init (the handler imported) and after the invocation.
"""

import json
import os
import subprocess
import sys

from helpers.lambda_events import EVENTS

# Not aiohttp: the Lambda layer has none (OPENAI_HTTP_CLIENT=httpx there).
HEAVY = (
    "aws_xray_sdk",
    "boto3",
    "botocore.client",
    "httpx2",
    "llama_cpp",
    "llm_server.providers.bedrock.wire",
    "llm_server.native_api.routes",
    "llm_server.openai_api.routes",
    "openai",
    "openai.resources.responses",
    "psutil",
    "pydantic.v1",
    "pydantic_settings",
    "sqlite3",
)
NATIVE = "llm_server.native_api.routes"
CHILD = f"""
import json, sys
sys.path.insert(0, {str(EVENTS)!r})
import invoke
invoke.use_lambda_environment()
import llm_server.lambda_handler
at_init = [name for name in {HEAVY!r} if name in sys.modules]
response = invoke.invoke(json.loads(sys.stdin.read()))
loaded = [name for name in {HEAVY!r} if name in sys.modules]
print(json.dumps({{"status": response["statusCode"], "at_init": at_init, "loaded": loaded}}))
"""
CALLER_KEY = "sk-proj-" + "c" * 40


def cold_invoke(event: dict, upstream: str, init_type: str = "on-demand", **settings: str) -> dict:
    """Invoke the handler once in a fresh interpreter: its status, and the heavy modules loaded
    at init (importing the handler) and after the invocation."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "AWS_", "POWERTOOLS_"))
    }
    env.update(
        LLM_PROVIDER="openai",
        OPENAI_BASE_URL=upstream,
        STORE="dynamodb",
        DYNAMODB_TABLE="llm-server-cold-start",
        CACHE_SHARED="true",
        LOG_LEVEL="WARNING",
        AWS_LAMBDA_INITIALIZATION_TYPE=init_type,
        **settings,
    )
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(event),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def chat_event() -> dict:
    event = json.loads((EVENTS / "chat.json").read_text(encoding="utf-8"))
    event["body"] = json.dumps({"user_message": "안녕하세요", "openai_api_key": CALLER_KEY})
    return event


def test_system_info_loads_no_api_routes_sdk_psutil_or_pydantic_v1(fake):
    event = json.loads((EVENTS / "system-info.json").read_text(encoding="utf-8"))
    assert cold_invoke(event, fake.url) == {"status": 200, "at_init": [], "loaded": []}


def test_with_bedrock_on_system_info_loads_none_of_it(fake):
    """Bedrock's models listed: its provider is built at init, its wire and botocore are not."""
    event = json.loads((EVENTS / "system-info.json").read_text(encoding="utf-8"))
    result = cold_invoke(event, fake.url, BEDROCK_MODELS="us.amazon.nova-lite-v1:0")
    assert result == {"status": 200, "at_init": [], "loaded": []}


def test_a_chat_on_the_callers_key_loads_httpx2_and_botocore_and_not_the_sdk(fake):
    """A whole reply is one POST over httpx2 (the SDK's own HTTP client), without the SDK.

    botocore: every turn, on any key, is charged to the tenant's row in the DynamoDB ledger; its
    client is botocore's own (boto3 would add ~20 ms of imports to the cold start, and nothing).
    """
    loaded = ["botocore.client", "httpx2", NATIVE]  # not the OpenAI API's routes
    assert cold_invoke(chat_event(), fake.url) == {"status": 200, "at_init": [], "loaded": loaded}
    assert len(fake.seen) == 1


def test_a_streamed_chat_loads_httpx2_and_botocore_and_not_the_sdk(fake):
    """A stream's events are read as they come over httpx2, without the SDK (a second of a
    cold streamed chat was its import and first call)."""
    event = chat_event()
    event["body"] = json.dumps({**json.loads(event["body"]), "stream": True})
    loaded = ["botocore.client", "httpx2", NATIVE]
    assert cold_invoke(event, fake.url) == {"status": 200, "at_init": [], "loaded": loaded}
    assert fake.seen[0].body["stream"] is True


def test_provisioned_concurrency_loads_httpx2_and_botocore_before_the_first_request(fake):
    """Its init is ahead of traffic: the HTTP client, and botocore for the DynamoDB stores."""
    result = cold_invoke(chat_event(), fake.url, "provisioned-concurrency")
    primed = ["botocore.client", "httpx2", NATIVE, "llm_server.openai_api.routes"]
    assert result == {"status": 200, "at_init": primed, "loaded": primed}


def test_a_snapstart_init_leaves_priming_to_the_before_snapshot_hook(fake):
    """Without the runtime's hooks (tests/serverless/test_snapstart.py runs them), nothing more."""
    result = cold_invoke(chat_event(), fake.url, "snap-start")
    loaded = ["botocore.client", "httpx2", NATIVE]
    assert result == {"status": 200, "at_init": [], "loaded": loaded}
