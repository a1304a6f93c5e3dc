"""Deploy the built SAM stack (`.aws-sam/build`) to ministack, an AWS emulator on loopback.

ministack (pinned in tests/requirements-ministack.txt) applies the SAM transform, enforces IAM
with `AUTH=true` and runs a zip function with its layers as a local subprocess behind the
emulated REST API. What it lacks is worked around here, never in template.yaml:

- ministack 1.5.33 cannot evaluate `Fn::Split` inside a `Conditions` entry (`KeyError: 0`): the
  deployed copy gets `SecretIsArn` evaluated for the secret *name* the e2e run passes.
- It refuses metric-math alarms (`Metrics:`) and knows no `AWS::Logs::QueryDefinition`: the
  deployed copy leaves those out (tests/deploy checks their expressions and query instead).
- It checks API keys but leaves `requestContext.identity.apiKeyId` out of the Lambda event, the
  owner identity of a stack deployed before gateway keys (the migration test deploys one):
  `ministack_launcher.py` adds it.
- It does not evaluate IAM's `dynamodb:LeadingKeys` condition (the key authorizer's role): the
  deploy tests check the statement instead.
- It ignores the gateway responses the SAM transform writes into the API's OpenAPI body
  (`x-amazon-apigateway-gateway-responses`): `deploy` puts the template's through the API
  Gateway API and redeploys the stage, as importing the body does on AWS.
- It cannot run the Lambda Web Adapter (`AWS_LAMBDA_EXEC_WRAPPER`): the adapter's public layer is
  stood in by an empty layer of the same account, name and version, so the stack deploys; the
  streaming app itself is run by `run_stream_function`, as the adapter would start it.
- It runs the SAM transform with no parameter values (`_sam_transform(template, {}, ...)`), where
  CloudFormation hands it the stack's: what SAM resolves itself (the usage plan's `Throttle` and
  `Quota`) came out as the template's `Default`s whatever the deploy passed. The deployed copy
  takes the deploy's values as its defaults, so both agree.
- The functions' `OPENAI_BASE_URL` points at the Responses API stand-in on loopback.
- Its Bedrock checks IAM under the action names `bedrock:Converse`/`ConverseStream`, where AWS
  checks `bedrock:InvokeModel`/`InvokeModelWithResponseStream` for Converse: the deployed copy's
  Bedrock statements name both (on the same models).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import yaml

from helpers.template import ROOT, _CfnLoader, tool_env

BUILD = ROOT / ".aws-sam" / "build"
MINISTACK = ROOT / ".tools" / "ministack" / "bin" / "python"
LAUNCHER = Path(__file__).with_name("ministack_launcher.py")
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
ADAPTER_ACCOUNT = "753240598075"
REGION = "ap-northeast-2"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@dataclass
class Stack:
    """A deployed stack: its emulator endpoint, outputs, API base URL and a tenant's key.

    The key is a gateway key made through the stack's IAM-authorised admin API (`signed`); a
    stack deployed from an older template, with no admin API, has its usage plan's key instead.
    """

    endpoint: str
    name: str
    outputs: dict[str, str]
    api: str
    api_key: str

    def client(self, service: str, **credentials: str) -> Any:
        """A boto3 client of the emulator (root credentials unless others are given)."""
        keys = {
            "aws_access_key_id": credentials.get("AccessKeyId", CREDENTIALS["AWS_ACCESS_KEY_ID"]),
            "aws_secret_access_key": credentials.get(
                "SecretAccessKey", CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
            ),
            "aws_session_token": credentials.get("SessionToken"),
        }
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **keys)


@contextmanager
def emulator(port: int, auth: bool = True, **extra: str) -> Iterator[str]:
    """ministack on 127.0.0.1:`port`; stopped (state and all) on exit.

    IAM is enforced unless `auth` is False; `extra` joins its environment
    (MINISTACK_BEDROCK_PROXY_URL...).
    """
    if not MINISTACK.exists():
        raise RuntimeError("ministack is not installed: make .tools/ministack/.installed")
    env = {
        **tool_env(),
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "AUTH": "true" if auth else "false",
        "LAMBDA_EXECUTOR": "local",
        "MINISTACK_REGION": REGION,
        **extra,
    }
    process = subprocess.Popen(
        [str(MINISTACK), str(LAUNCHER)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, f"{endpoint}/_ministack/health", "ministack did not start")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


BUILT = BUILD / "template.yaml"


def deploy(
    endpoint: str,
    name: str,
    parameters: dict[str, str],
    env: dict[str, str],
    source: Path = BUILT,
) -> Stack:
    """`sam deploy` the built template (with the workarounds above) and read what it made.

    `source`: another template of the same build (an older release's, `built_from`).
    """
    stack = Stack(endpoint, name, {}, "", "")
    _stand_in_adapter_layer(stack)
    stack.client("s3").create_bucket(
        Bucket=f"{name}-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return update(stack, parameters, env, source)


def built_from(template: str, path: Path) -> Path:
    """An older release's template.yaml made deployable with this build's artifacts, as `sam
    build` makes the built template: each function's code and the layer from their folders."""
    for function in ("ChatFunction", "StreamFunction"):
        start = template.index(f"\n  {function}:\n")
        template = template[:start] + template[start:].replace(
            "CodeUri: functions/", f"CodeUri: {function}", 1
        )
    path.write_text(
        template.replace("ContentUri: layers/dependencies/", "ContentUri: DependenciesLayer")
    )
    return path


def update(
    stack: Stack, parameters: dict[str, str], env: dict[str, str], source: Path = BUILT
) -> Stack:
    """`sam deploy` again with these parameters (a stack update), and read what it made."""
    name, endpoint, bucket = stack.name, stack.endpoint, f"{stack.name}-artifacts"
    template = BUILD / f"{name}-template.json"
    template.write_text(json.dumps(emulator_template(env, parameters, source)), encoding="utf-8")
    overrides = [f"{key}={value}" for key, value in parameters.items()]
    subprocess.run(
        [
            str(SAM),
            "deploy",
            "--template-file",
            str(template),
            "--stack-name",
            name,
            "--s3-bucket",
            bucket,
            "--capabilities",
            "CAPABILITY_IAM",
            "--no-confirm-changeset",
            "--no-progressbar",
            "--parameter-overrides",
            *overrides,
        ],
        env={
            **tool_env(),
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "SAM_CLI_TELEMETRY": "0",
        },
        check=True,
        capture_output=True,
        timeout=300,
    )
    described = stack.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    stack.outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    api_id = stack.outputs["ApiUrl"].split("//")[1].split(".")[0]
    stage = stack.outputs["ApiUrl"].rstrip("/").rsplit("/", 1)[1]
    stack.api = f"{endpoint}/_aws/execute-api/{api_id}/{stage}"
    _put_gateway_responses(stack, api_id, stage, bool(parameters.get("CorsAllowOrigins")), source)
    if not stack.api_key:
        stack.api_key = _tenant_key(stack)
    return stack


def _tenant_key(stack: Stack) -> str:
    """A key for the suite's tenant: made by the operator, or the old usage plan's."""
    made = signed(stack, "POST", "/admin/v1/keys", {"name": "e2e-tenant"})
    if made.status_code == 201:
        return str(made.json()["key"])
    keys = stack.client("apigateway").get_api_keys(includeValues=True)["items"]
    return str(next(k["value"] for k in keys if k["name"].startswith(stack.name)))


def signed(
    stack: Stack,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
) -> httpx.Response:
    """A request to the stack's API signed with SigV4 for `execute-api` (root unless given)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    keys = credentials or {"AccessKeyId": "test", "SecretAccessKey": "test"}
    url = f"{stack.api}{path}"
    content = json.dumps(body).encode() if body is not None else b""
    request = AWSRequest(method, url, data=content)
    if body is not None:
        request.headers["content-type"] = "application/json"
    signer = Credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys.get("SessionToken"))
    SigV4Auth(signer, "execute-api", REGION).add_auth(request)
    headers = dict(request.headers.items())
    return httpx.request(method, url, content=content, headers=headers, timeout=60)


def emulator_template(
    env: dict[str, str], parameters: dict[str, str], source: Path = BUILT
) -> dict[str, Any]:
    """The built template as deployed to the emulator: the workarounds in the docstring."""
    text = source.read_text(encoding="utf-8")
    template = yaml.load(text, Loader=_CfnLoader)
    for name, value in parameters.items():
        template["Parameters"][name]["Default"] = value
    template["Conditions"]["SecretIsArn"] = {"Fn::Equals": ["name", "arn"]}
    resources = template["Resources"]
    for name in [
        n
        for n, r in resources.items()
        if "Metrics" in r.get("Properties", {}) or r["Type"] == "AWS::Logs::QueryDefinition"
    ]:
        del resources[name]
    template["Globals"]["Function"]["Environment"]["Variables"].update(env)
    for statement in resources["InvokeBedrockPolicy"]["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement.get("Action", ())  # the guardrail's Deny is an Fn::If
        if "bedrock:InvokeModel" in actions:  # not CountTokens, a string of its own
            statement["Action"] = [*actions, "bedrock:Converse", "bedrock:ConverseStream"]
    return template


def _put_gateway_responses(
    stack: Stack, api_id: str, stage: str, cors_on: bool, source: Path
) -> None:
    """The template's `GatewayResponses` (CorsOn resolved), put and deployed to the stage."""
    text = source.read_text(encoding="utf-8")
    template = yaml.load(text, Loader=_CfnLoader)
    responses = template["Resources"]["ChatApi"]["Properties"]["GatewayResponses"]
    gateway = stack.client("apigateway")
    for kind, response in responses.items():
        headers = {
            f"gatewayresponse.header.{name}": value["Fn::If"][1 if cors_on else 2]
            if isinstance(value, dict)
            else value
            for name, value in response["ResponseParameters"]["Headers"].items()
        }
        gateway.put_gateway_response(
            restApiId=api_id, responseType=kind, responseParameters=headers
        )
    gateway.create_deployment(restApiId=api_id, stageName=stage)


def _stand_in_adapter_layer(stack: Stack) -> None:
    """An empty `LambdaAdapterLayerX86` in the adapter's account, up to the pinned version."""
    version = int(
        yaml.load((BUILD / "template.yaml").read_text(encoding="utf-8"), Loader=_CfnLoader)[
            "Parameters"
        ]["WebAdapterLayerVersion"]["Default"]
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as layer:
        layer.writestr("bootstrap", '#!/bin/sh\nexec "$@"\n')
    adapter = stack.client("lambda", AccessKeyId=ADAPTER_ACCOUNT, SecretAccessKey="stand-in")
    versions = adapter.list_layer_versions(LayerName="LambdaAdapterLayerX86")["LayerVersions"]
    if any(v["Version"] == version for v in versions):
        return  # another stack of this emulator stood it in already
    published = 0
    while published < version:
        published = adapter.publish_layer_version(
            LayerName="LambdaAdapterLayerX86", Content={"ZipFile": archive.getvalue()}
        )["Version"]
    adapter.add_layer_version_permission(
        LayerName="LambdaAdapterLayerX86",
        VersionNumber=version,
        StatementId="public",
        Action="lambda:GetLayerVersion",
        Principal="*",
    )


def delete(stack: Stack) -> None:
    """Delete the stack and wait until it is gone."""
    cloudformation = stack.client("cloudformation")
    cloudformation.delete_stack(StackName=stack.name)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stacks = cloudformation.describe_stacks()["Stacks"]
        if all(
            s["StackName"] != stack.name or "DELETE_COMPLETE" in s["StackStatus"] for s in stacks
        ):
            return
        time.sleep(0.5)
    raise RuntimeError(f"stack {stack.name} was not deleted")


def role_credentials(stack: Stack, function_arn: str) -> dict[str, str]:
    """Temporary credentials of a deployed function's execution role (STS AssumeRole)."""
    role = stack.client("lambda").get_function_configuration(FunctionName=function_arn)["Role"]
    assumed = stack.client("sts").assume_role(RoleArn=role, RoleSessionName="e2e")
    return assumed["Credentials"]


@contextmanager
def stream_function(stack: Stack, port: int, **changed: str) -> Iterator[subprocess.Popen]:
    """The built StreamFunction's `run.sh`, started as the Web Adapter starts it.

    `changed`: environment variables set otherwise than deployed (a test's settings).

    Its environment is the deployed function's (less the adapter's own variables), with the
    function role's credentials and the emulator as the AWS endpoint; yields once the adapter's
    readiness check (`AWS_LWA_READINESS_CHECK_PATH`) answers 200. Output goes to a pipe.
    """
    arn = stack.outputs["StreamFunctionArn"]
    deployed = stack.client("lambda").get_function_configuration(FunctionName=arn)
    env = dict(deployed["Environment"]["Variables"])
    readiness = env.pop("AWS_LWA_READINESS_CHECK_PATH", "/")
    env.pop("AWS_LAMBDA_EXEC_WRAPPER", None)
    credentials = role_credentials(stack, arn)
    env.update(
        PATH=os.environ["PATH"],
        PORT=str(port),
        LAMBDA_TASK_ROOT=str(BUILD / "StreamFunction"),
        PYTHONPATH=str(BUILD / "DependenciesLayer" / "python"),
        AWS_LAMBDA_FUNCTION_NAME=deployed["FunctionName"],
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=stack.endpoint,
        AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
        AWS_SESSION_TOKEN=credentials["SessionToken"],
        **changed,
    )
    process = subprocess.Popen(
        ["sh", str(BUILD / "StreamFunction" / "run.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = f"http://127.0.0.1:{port}{readiness}"
        _wait_ready(process, ready, "the stream function's run.sh did not become ready")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(process: subprocess.Popen, url: str, failure: str, seconds: float = 60) -> None:
    """Wait until `url` answers 2xx; raise `failure` if the process dies or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).is_success:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(failure)
        time.sleep(0.2)
