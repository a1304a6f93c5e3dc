"""template.yaml against the code: routes, IAM, dashboard and alarms, environment, handler.

cfn-lint misses some of these (invalid JSON inside a !Sub dashboard body, routes that do not
exist in the app, an over-broad policy), so they are checked here on the real SAM transform.
"""

import fnmatch
import importlib
import json
import re
import sys

import pytest

from helpers.settings import make_settings
from helpers.template import ROOT, load_template, transformed_template
from llm_server.app import create_app
from llm_server.config.settings import Settings
from llm_server.utils.log import SERVICE_NAME
from llm_server.utils.metrics import NAMESPACE, MetricName

# What the template sets on a function for others than the app: Powertools, the Lambda Web
# Adapter (AWS_LWA_*, with PORT and the exec wrapper that starts it), and the deployment.
ENV_NOT_SETTINGS = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_TRACE_DISABLED",
    "DEPLOYED_PARAMETERS",  # not read: there to publish a version when a parameter changes
    "AWS_LAMBDA_EXEC_WRAPPER",
    "PORT",
}


@pytest.fixture(scope="module")
def template():
    return load_template()


@pytest.fixture(scope="module")
def cloudformation():
    return transformed_template(Stage="prod", OpenAISecretName="llm-server/prod/openai-api-key")


@pytest.fixture(scope="module")
def function(template):
    return template["Resources"]["ChatFunction"]["Properties"]


def dashboard_body(template):
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{[^}]+\}", "x", body))


def metric_names_in(dashboard):
    """(namespace, name) of every metric a dashboard widget shows, SEARCH expressions included."""
    names = set()
    for widget in dashboard["widgets"]:
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], str):
                names.add((row[0], row[1]))
            for item in row:
                if isinstance(item, dict) and "expression" in item:
                    namespace = re.search(r"\{(\w+),", item["expression"]).group(1)
                    names.add(
                        (namespace, re.search(r'MetricName="(\w+)"', item["expression"]).group(1))
                    )
    return names


def test_the_routes_are_the_apps_routes(cloudformation):
    paths = cloudformation["Resources"]["ChatApi"]["Properties"]["Body"]["paths"]
    deployed = {(path, method.upper()) for path, ops in paths.items() for method in ops}
    app = create_app(make_settings())
    served = {
        (path, method.upper()) for path, ops in app.openapi()["paths"].items() for method in ops
    }
    pages = {("/", "GET"), ("/docs", "GET"), ("/static/{proxy+}", "GET")}  # web/pages.py
    served |= {*pages, (app.openapi_url, "GET")}
    preflights = {(path, method) for path, method in deployed if method == "OPTIONS"}
    assert deployed - preflights == served


def test_streamed_routes_go_to_the_web_adapter_function_in_stream_mode(cloudformation, template):
    paths = cloudformation["Resources"]["ChatApi"]["Properties"]["Body"]["paths"]
    for path in ("/v1/chat/completions", "/v1/responses", "/v1/completions"):
        integration = paths[path]["post"]["x-amazon-apigateway-integration"]
        assert integration["responseTransferMode"] == "STREAM"
        uri = integration["uri"]["Fn::Sub"]
        assert "${StreamFunctionAliaslive}/response-streaming-invocations" in uri
    stream = template["Resources"]["StreamFunction"]["Properties"]
    env = stream["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/api/v1/health"
    run_sh = ROOT / "functions" / stream["Handler"]
    assert run_sh.stat().st_mode & 0o111, "run.sh must be executable"
    target = re.search(r"uvicorn (\S+):(\w+)", run_sh.read_text()).groups()
    assert getattr(importlib.import_module(target[0]), target[1]).title == "LLM Server"


def test_both_functions_snapstart_behind_the_alias_every_route_invokes(cloudformation, template):
    assert template["Parameters"]["SnapStart"]["Default"] == "true"
    resources = cloudformation["Resources"]
    for name in ("ChatFunction", "StreamFunction"):
        snap_start = resources[name]["Properties"]["SnapStart"]["ApplyOn"]
        assert snap_start == {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}
        alias = resources[f"{name}Aliaslive"]
        assert alias["Type"] == "AWS::Lambda::Alias"
        version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Properties"]["FunctionName"] == {"Ref": name}
    paths = resources["ChatApi"]["Properties"]["Body"]["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            uri = json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
            assert "Aliaslive}" in uri and ".Arn}" not in uri, (path, method)
    stream = template["Resources"]["StreamFunction"]["Properties"]["Environment"]["Variables"]
    assert stream["AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH"].startswith("/_lambda/")
    assert stream["AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"].startswith("/_lambda/")


def test_the_function_may_read_only_its_own_secret(cloudformation):
    statements = []
    for resource in cloudformation["Resources"].values():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        documents += [props["PolicyDocument"]] if "PolicyDocument" in props else []
        for document in documents:
            statements += [s for s in document["Statement"] if "secretsmanager" in json.dumps(s)]
    assert len(statements) == 1
    statement = statements[0]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    by_name = statement["Resource"]["Fn::If"][2]["Fn::Sub"]
    assert by_name.endswith(":secret:${OpenAISecretName}-??????")
    assert statement["Resource"]["Fn::If"][1] == {"Ref": "OpenAISecretName"}
    assert "*" not in by_name.replace("-??????", "")


def test_dashboard_is_valid_json_showing_every_metric_the_code_emits(template):
    shown = metric_names_in(dashboard_body(template))
    ours = {name for namespace, name in shown if namespace == NAMESPACE}
    assert ours == {m.value for m in MetricName}
    for namespace, name in shown - {(NAMESPACE, n) for n in ours}:
        assert namespace in ("AWS/Lambda", "AWS/ApiGateway"), (namespace, name)


def test_dashboard_uses_the_service_dimension_the_code_emits(template):
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert f'"service", "{SERVICE_NAME}"' in body
    assert '"Dimensions"' not in body  # widget rows, not raw EMF


def test_alarms_watch_metrics_that_exist(template):
    alarms = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert len(alarms) == 7
    for alarm in alarms:
        stats = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        for metric in stats or [alarm]:
            if metric["Namespace"] == NAMESPACE:
                assert metric["MetricName"] in {m.value for m in MetricName}
                assert metric["Dimensions"] == [{"Name": "service", "Value": SERVICE_NAME}]


def test_a_broken_function_sets_off_an_alarm_without_writing_a_metric(template):
    """Init crashes, timeouts and OOM kills write nothing of ours: AWS's own metrics must alarm."""
    alarms = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    lambda_errors = {
        a["Dimensions"][0]["Value"]["Ref"]
        for a in alarms
        if a.get("Namespace") == "AWS/Lambda" and a["MetricName"] == "Errors"
    }
    assert lambda_errors == {"ChatFunction", "StreamFunction"}
    assert any(
        a.get("Namespace") == "AWS/ApiGateway" and a["MetricName"] == "5XXError" for a in alarms
    )
    (rate,) = [a for a in alarms if "Metrics" in a]
    watched = {
        q["MetricStat"]["Metric"]["MetricName"] for q in rate["Metrics"] if "MetricStat" in q
    }
    assert watched == {"ServerErrors", "Requests"}  # 5xx only: a caller's 401 or 422 is no incident


def test_the_dashboard_shows_the_stream_function_as_it_shows_the_chat_function(template):
    raw = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", raw))  # ${ChatFunction} -> ChatFunction
    for metric in ("Duration", "Throttles", "ConcurrentExecutions", "Errors"):
        functions = {
            row[3]
            for widget in body["widgets"]
            for row in widget["properties"].get("metrics", [])
            if isinstance(row[0], str) and row[:2] == ["AWS/Lambda", metric]
        }
        assert functions == {"ChatFunction", "StreamFunction"}, metric


def test_every_variable_the_functions_get_is_a_setting_the_app_reads(template):
    """A misspelt or retired name in the template would be ignored without a word (the settings
    ignore unknown variables), leaving the function on the app's default."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    assert env["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME
    assert env["LLM_PROVIDER"] == "openai"  # the local model is not in the Lambda package
    functions = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    assert len(functions) == 4  # chat, stream, background, key authorizer
    names = set(env).union(*(f.get("Environment", {}).get("Variables", {}) for f in functions))
    others = {name for name in names if name in ENV_NOT_SETTINGS or name.startswith("AWS_LWA_")}
    assert {name for name in names - others if name.lower() not in Settings.model_fields} == set()
    assert "BACKGROUND_FUNCTION" in names and "AWS_LWA_INVOKE_MODE" in others  # all were read


def test_handler_runtime_and_timeout(template, function):
    module, attribute = function["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), attribute))
    function_globals = template["Globals"]["Function"]
    assert function_globals["Timeout"] <= 29  # under API Gateway's integration limit
    assert function["CodeUri"] == "functions/"
    layer = template["Resources"]["DependenciesLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"


def test_one_runtime_python_everywhere(template):
    """The runtime, the layer's, the Python the Makefile builds and the one running this suite."""
    runtime = "python{}.{}".format(*sys.version_info[:2])  # test-lambda runs on the runtime's
    assert template["Globals"]["Function"]["Runtime"] == runtime == "python3.13"
    layer = template["Resources"]["DependenciesLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == [runtime]
    versions = (ROOT / "toolchain" / "versions.mk").read_text()  # the Makefiles include it
    assert f"LAMBDA_PYTHON_VERSION := {runtime[6:]}." in versions
    layer_makefile = (ROOT / "layers" / "dependencies" / "Makefile").read_text()
    assert f"--python-version {runtime[6:]} " in layer_makefile


def test_the_table_matches_the_stores_and_access_is_scoped_to_it(template, cloudformation):
    table = template["Resources"]["Table"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "pk": "HASH",
        "sk": "RANGE",
    }
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["STORE"] == "dynamodb" and env["DYNAMODB_TABLE"] == {"Ref": "Table"}
    inline = [
        (name, statement)
        for name, resource in cloudformation["Resources"].items()
        for policy in resource.get("Properties", {}).get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if "dynamodb" in json.dumps(statement.get("Action"))
    ]
    assert [name for name, _ in inline] == ["KeyAuthorizerFunctionRole"]


def test_the_key_authorizer_may_read_the_keys_hash_items_and_nothing_else(cloudformation):
    """One GetItem by the hash of the caller's key: its role reads no session, usage or record."""
    from llm_server.stores.keys_dynamodb import HASH_PREFIX

    role = cloudformation["Resources"]["KeyAuthorizerFunctionRole"]["Properties"]
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "dynamodb:GetItem",
        "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{HASH_PREFIX}*"]}},
    }
    assert {"Ref": "TableAccessPolicy"} not in role.get("ManagedPolicyArns", [])
    function = cloudformation["Resources"]["KeyAuthorizerFunction"]["Properties"]
    assert "Layers" not in function  # botocore is the runtime's: nothing else to load
    module, attribute = function["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), attribute))


def test_the_functions_may_make_exactly_the_calls_the_stores_make(cloudformation):
    """Least privilege: no Scan, no index, no table management (DynamoDBCrudPolicy had them)."""
    resources = cloudformation["Resources"]
    (statement,) = resources["TableAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == [
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    assert statement["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}
    for role in ("ChatFunctionRole", "StreamFunctionRole"):
        assert {"Ref": "TableAccessPolicy"} in resources[role]["Properties"]["ManagedPolicyArns"]


def test_the_deployed_functions_trust_only_the_gateway_for_identity(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["IDENTITY_SOURCE"] == "gateway" and env["ALLOW_ANONYMOUS"] == "false"


KEY = [{"KeyAuthorizer": []}]
IAM = [{"AWS_IAM": []}]


def test_every_tenant_route_takes_a_key_the_authorizer_checks(cloudformation):
    """Health, the pages and the preflights are open; the admin API is IAM's; the rest a key's."""
    body = cloudformation["Resources"]["ChatApi"]["Properties"]["Body"]
    open_routes = {("/api/v1/health", "get"), ("/docs", "get"), ("/openapi.json", "get")}
    open_routes |= {("/", "get"), ("/static/{proxy+}", "get")}  # the pages hold nothing
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            if (path, method) in open_routes or method == "options":
                expected = [{"NONE": []}]
            else:
                expected = IAM if path.startswith("/admin/") else KEY
            assert operation["security"] == expected, (path, method)
    authorizer = body["securityDefinitions"]["KeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request"
    assert authorizer["identitySource"] == "method.request.header.X-Api-Key"
    assert authorizer["authorizerUri"]["Fn::Sub"][1]["__FunctionArn__"] == {
        "Ref": "KeyAuthorizerFunctionAliaslive"
    }


def test_a_revoked_key_works_at_most_key_cache_seconds(template, cloudformation):
    """The authorizer's answer is cached per key: that bounds how long a revoked key works."""
    assert template["Parameters"]["KeyCacheSeconds"]["Default"] == 30
    body = cloudformation["Resources"]["ChatApi"]["Properties"]["Body"]
    authorizer = body["securityDefinitions"]["KeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert authorizer["authorizerResultTtlInSeconds"] == 30
    changed = transformed_template(Stage="prod", OpenAISecretName="x", KeyCacheSeconds="0")
    body = changed["Resources"]["ChatApi"]["Properties"]["Body"]
    authorizer = body["securityDefinitions"]["KeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert int(authorizer["authorizerResultTtlInSeconds"]) == 0


def test_the_admin_api_is_the_operators_by_iam_only(template, cloudformation):
    """AWS_IAM routes, invoked by the function's own permission (not the caller's credentials);
    ADMIN_IAM on the function that serves them only; the operator's page has no route."""
    paths = cloudformation["Resources"]["ChatApi"]["Properties"]["Body"]["paths"]
    admin = {path: ops for path, ops in paths.items() if path.startswith("/admin")}
    assert sorted(admin) == [
        "/admin/v1/keys",
        "/admin/v1/keys/{key_id}",
        "/admin/v1/keys/{key_id}/rotate",
    ]
    for operations in admin.values():
        for operation in operations.values():
            assert operation["security"] == IAM
            assert "credentials" not in operation["x-amazon-apigateway-integration"]
    assert "/admin" not in paths
    resources = template["Resources"]
    assert (
        resources["ChatFunction"]["Properties"]["Environment"]["Variables"]["ADMIN_IAM"] == "true"
    )
    assert "ADMIN_IAM" not in resources["StreamFunction"]["Properties"]["Environment"]["Variables"]
    assert "ADMIN_API_KEY" not in json.dumps(template)  # never a shared secret on AWS


def test_every_route_a_browser_calls_has_a_preflight_the_app_answers(cloudformation):
    """A route that needs x-api-key makes browsers send a preflight, which carries no key."""
    paths = cloudformation["Resources"]["ChatApi"]["Properties"]["Body"]["paths"]
    for path, operations in paths.items():
        if any(op.get("security") == KEY for op in operations.values()):
            assert "options" in operations, path
            integration = operations["options"]["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy", path  # the app, not a static mock


def test_gateway_errors_carry_cors_headers_when_cors_is_on(cloudformation):
    body = cloudformation["Resources"]["ChatApi"]["Properties"]["Body"]
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        headers = body["x-amazon-apigateway-gateway-responses"][kind]["responseParameters"]
        origin = headers["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert origin == {"Fn::If": ["CorsOn", "method.request.header.origin", "''"]}
    kinds = {r["Type"] for r in cloudformation["Resources"].values()}
    assert not {"AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey"} & kinds  # not identity
    assert cloudformation["Resources"]["ChatApi"]["Properties"]["ApiKeySourceType"] == "AUTHORIZER"


def test_the_app_stack_never_owns_the_account_wide_api_gateway_role(template):
    """A first deploy cannot race for it, and deleting the app cannot take it from other APIs."""
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert "AWS::ApiGateway::Account" not in kinds
    access_logs = template["Resources"]["ChatApi"]["Properties"]["AccessLogSetting"]
    assert access_logs["Fn::If"][0] == "AccessLogsOn" and access_logs["Fn::If"][2] == {
        "Ref": "AWS::NoValue"
    }
    assert template["Parameters"]["ApiAccessLogging"]["Default"] == "false"
    bootstrap = load_template(ROOT / "bootstrap" / "api-gateway-logging.yaml")
    for resource in bootstrap["Resources"].values():
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_the_table_outlives_the_stack_only_when_asked(template):
    table = template["Resources"]["Table"]
    choice = {"Fn::If": ["KeepData", "Retain", "Delete"]}
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == choice
    assert "AWS::LanguageExtensions" in template["Transform"]
    assert 'RetainData="false"' in samconfig_overrides("default")
    assert 'RetainData="true"' in samconfig_overrides("prod")


@pytest.mark.parametrize("env", ["default", "prod"])
def test_samconfig_overrides_only_parameters_the_template_has(template, env):
    """`sam deploy` refuses an override of a parameter the template no longer has."""
    named = re.findall(r'(\w+)="[^"]*"', samconfig_overrides(env))
    assert set(named) <= set(template["Parameters"])


@pytest.mark.parametrize("env", ["default", "prod"])
def test_the_defaults_deploy_in_a_new_account(template, env):
    """No reserved concurrency unless asked: Lambda keeps 100 executions unreserved."""
    overrides = samconfig_overrides(env)
    assert "ReservedConcurrency" not in overrides
    for name in (
        "ReservedConcurrency",
        "StreamReservedConcurrency",
        "AuthorizerReservedConcurrency",
    ):
        assert template["Parameters"][name]["Default"] == 0
    stream = template["Resources"]["StreamFunction"]["Properties"]
    assert stream["ReservedConcurrentExecutions"]["Fn::If"][0] == "HasStreamReservedConcurrency"


def test_the_web_adapter_layer_is_pinned_to_its_current_release(template):
    assert template["Parameters"]["WebAdapterLayerVersion"]["Default"] == 30


def samconfig_overrides(env: str) -> str:
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    return config[env]["deploy"]["parameters"]["parameter_overrides"]


FUNCTIONS = ("ChatFunction", "StreamFunction")


def version_of(cloudformation, function="ChatFunction"):
    """The logical id of the version the alias `live` points at: a new one is a new version."""
    alias = cloudformation["Resources"][f"{function}Aliaslive"]
    return alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LogLevel", "WARNING"),
        ("FreeModeEnabled", "false"),
        ("OpenAISecretName", "llm-server/other/openai-api-key"),
        ("BedrockModels", "us.amazon.nova-lite-v1:0"),
        ("ModelFallbacks", "gpt-4o-mini=us.amazon.nova-lite-v1:0"),
        ("BedrockGuardrail", "abc123def456:2"),
    ],
)
def test_a_change_of_one_parameter_publishes_new_versions_behind_live(cloudformation, name, value):
    """SAM would hash the environment's Refs, not their values, and publish nothing (SAM issues
    1640, 3820): `live` would keep the old settings."""
    base = {"Stage": "prod", "OpenAISecretName": "llm-server/prod/openai-api-key"}
    changed = transformed_template(**{**base, name: value})
    for function in FUNCTIONS:
        assert version_of(changed, function) != version_of(cloudformation, function), function
    assert version_of(transformed_template(**base)) == version_of(cloudformation)  # stable


def test_every_parameter_the_functions_read_publishes_a_version(template):
    """A parameter in the functions' settings but not in DEPLOYED_PARAMETERS would change the
    function and leave `live` on the old version."""
    functions = template["Globals"]["Function"]
    resources = template["Resources"]
    own = [resources[name]["Properties"]["Environment"]["Variables"] for name in FUNCTIONS]
    digest = own[0]["DEPLOYED_PARAMETERS"]
    assert all(variables["DEPLOYED_PARAMETERS"] == digest for variables in own)
    published = {ref["Ref"] for ref in digest["Fn::ToJsonString"]}
    read = set(re.findall(r"'Ref': '(\w+)'", str(functions["Environment"])))
    read |= set(re.findall(r"'Ref': '(\w+)'", str(functions.get("SnapStart"))))
    conditions = template["Conditions"]
    for name in list(re.findall(r"'Fn::If': \['(\w+)'", str(functions))):
        read |= set(re.findall(r"'Ref': '(\w+)'", str(conditions[name])))
    assert read - {"Table"} <= published


def test_bedrock_is_granted_exactly_the_listed_models_and_only_when_there_are_some(
    template, cloudformation
):
    policy = template["Resources"]["InvokeBedrockPolicy"]
    assert policy["Condition"] == "HasBedrock"
    assert template["Conditions"]["HasBedrock"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "BedrockModels"}, ""]}]
    }
    roles = (
        {"Ref": "ChatFunctionRole"},
        {"Ref": "StreamFunctionRole"},
        {"Ref": "BackgroundFunctionRole"},
    )
    assert tuple(policy["Properties"]["Roles"]) == roles
    listed, counting, through_profiles, guarded = policy["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert guarded["Fn::If"][0] == "HasGuardrail"  # below
    assert counting["Action"] == "bedrock:CountTokens"  # free: it generates nothing
    assert counting["Resource"] == "arn:aws:bedrock:*::foundation-model/*"
    actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    assert listed["Action"] == actions and through_profiles["Action"] == actions
    models = evaluate(listed["Resource"], "us.amazon.nova-lite-v1:0,anthropic.claude-x-v1:0")
    assert models == [
        "arn:aws:bedrock:*::foundation-model/us.amazon.nova-lite-v1:0",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-x-v1:0",
        "arn:aws:bedrock:*:*:inference-profile/us.amazon.nova-lite-v1:0",
        "arn:aws:bedrock:*:*:inference-profile/anthropic.claude-x-v1:0",
    ]
    assert through_profiles["Resource"] == "arn:aws:bedrock:*::foundation-model/*"
    condition = through_profiles["Condition"]["StringLike"]["bedrock:InferenceProfileArn"]
    assert evaluate(condition, "us.amazon.nova-lite-v1:0") == [
        "arn:aws:bedrock:*:*:inference-profile/us.amazon.nova-lite-v1:0"
    ]
    granted = [
        s
        for r in cloudformation["Resources"].values()
        for s in r.get("Properties", {}).get("PolicyDocument", {}).get("Statement", [])
        if "bedrock" in json.dumps(s)
    ]
    assert len(granted) == 5  # nothing else grants Bedrock but the guardrail's (below)


def test_embedding_models_listed_with_the_chat_models_may_be_invoked_and_nothing_else(template):
    """Titan and Cohere embed through InvokeModel: BedrockModels lists them with the chat models,
    as foundation models or through a profile, and the policy grants them by the same rule."""
    statements = template["Resources"]["InvokeBedrockPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    by_sid = {statement["Sid"]: statement for statement in statements if "Sid" in statement}
    listed = by_sid["TheListedModels"]
    through_profiles = by_sid["FoundationModelsThroughTheListedProfilesOnly"]
    models = "amazon.titan-embed-text-v2:0,us.cohere.embed-v4:0,us.amazon.nova-lite-v1:0"
    granted = evaluate(listed["Resource"], models)
    assert "arn:aws:bedrock:*::foundation-model/amazon.titan-embed-text-v2:0" in granted
    assert "arn:aws:bedrock:*:*:inference-profile/us.cohere.embed-v4:0" in granted
    assert not any("cohere.embed-english" in arn or "titan-embed-text-v1" in arn for arn in granted)
    assert "bedrock:InvokeModel" in listed["Action"]
    profiles = through_profiles["Condition"]["StringLike"]["bedrock:InferenceProfileArn"]
    assert "arn:aws:bedrock:*:*:inference-profile/us.cohere.embed-v4:0" in evaluate(
        profiles, models
    )


def evaluate(node, models: str):
    """CloudFormation's Split, Join, Sub (with a map) and Ref of BedrockModels, as it deploys."""
    if isinstance(node, list):
        return [evaluate(item, models) for item in node]
    if not isinstance(node, dict):
        return node
    ((name, value),) = node.items()
    if name == "Ref":
        return {"BedrockModels": models}[value]
    if name == "Fn::Split":
        return evaluate(value[1], models).split(value[0])
    if name == "Fn::Join":
        return value[0].join(evaluate(value[1], models))
    text, names = value
    for key, inner in names.items():
        text = text.replace(f"${{{key}}}", evaluate(inner, models))
    return text


PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "ap-northeast-2",
    "AWS::AccountId": "123456789012",
}


def resolved(node, parameters: dict[str, str], conditions: dict[str, bool]):
    """A template node as CloudFormation deploys it: Ref, Sub, Select, Split, Join, If, NoValue."""
    if isinstance(node, list):
        return [resolved(item, parameters, conditions) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::")):
        kept = {k: resolved(v, parameters, conditions) for k, v in node.items()}
        return {k: v for k, v in kept.items() if v is not NotImplemented}
    ((name, value),) = node.items()
    if name == "Ref":
        return NotImplemented if value == "AWS::NoValue" else {**PSEUDO, **parameters}[value]
    if name == "Fn::If":
        chosen = value[1] if conditions[value[0]] else value[2]
        return resolved(chosen, parameters, conditions)
    if name == "Fn::Select":
        return resolved(value[1], parameters, conditions)[value[0]]
    if name == "Fn::Split":
        return resolved(value[1], parameters, conditions).split(value[0])
    if name == "Fn::Join":
        return value[0].join(resolved(value[1], parameters, conditions))
    text, names = value if isinstance(value, list) else (value, {})
    known = {**PSEUDO, **{k: resolved(v, parameters, conditions) for k, v in names.items()}}
    return re.sub(r"\$\{([\w:]+)\}", lambda m: known[m.group(1)], text)


@pytest.mark.parametrize("guardrail", ["abc123def456:3", ""])
def test_a_guardrail_is_applied_alone_and_the_models_only_with_it(template, guardrail):
    """ApplyGuardrail on that guardrail only, for every function that runs turns; with one set,
    a call of any model but an embedding one without that guardrail's version is denied
    (bedrock:GuardrailIdentifier, its ARN and version, as AWS documents the key)."""
    resources, on = template["Resources"], {"HasGuardrail": bool(guardrail)}
    parameters = {"BedrockGuardrail": guardrail, "BedrockModels": "us.amazon.nova-lite-v1:0"}
    applying = resources["ApplyGuardrailPolicy"]
    assert applying["Condition"] == "HasGuardrail"
    assert template["Conditions"]["HasGuardrail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "BedrockGuardrail"}, ""]}]
    }
    assert (
        applying["Properties"]["Roles"] == resources["InvokeBedrockPolicy"]["Properties"]["Roles"]
    )
    ((statement),) = applying["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "bedrock:ApplyGuardrail"
    if guardrail:
        assert resolved(statement["Resource"], parameters, on) == (
            "arn:aws:bedrock:ap-northeast-2:123456789012:guardrail/abc123def456"
        )
    statements = resolved(
        resources["InvokeBedrockPolicy"]["Properties"]["PolicyDocument"]["Statement"],
        parameters,
        on,
    )
    statements = [s for s in statements if s is not NotImplemented]
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    assert not any("bedrock:GuardrailIdentifier" in json.dumps(s) for s in allowed)
    denied = [s for s in statements if s["Effect"] == "Deny"]
    if not guardrail:
        assert denied == []
        return
    (deny,) = denied
    assert deny["Action"] == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    assert deny["Condition"] == {
        "StringNotEquals": {  # true when the key is absent: a call without any guardrail too
            "bedrock:GuardrailIdentifier": (
                "arn:aws:bedrock:ap-northeast-2:123456789012:guardrail/abc123def456:3"
            )
        }
    }
    exempt = [
        arn
        for model in (
            "amazon.titan-embed-text-v2:0",
            "us.cohere.embed-v4:0",
            "cohere.embed-multilingual-v3",
            "us.amazon.nova-lite-v1:0",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "amazon.titan-text-express-v1",
        )
        for arn in (
            f"arn:aws:bedrock:us-east-1::foundation-model/{model}",
            f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{model}",
        )
        if any(fnmatch.fnmatchcase(arn, pattern) for pattern in deny["NotResource"])
    ]
    assert exempt == [  # the embedding models only, as foundation models or profiles
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.cohere.embed-v4:0",
        "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-multilingual-v3",
    ]


def test_the_guardrail_parameter_takes_an_id_and_a_numbered_version(template):
    parameter = template["Parameters"]["BedrockGuardrail"]
    pattern = re.compile(parameter["AllowedPattern"])
    assert [bool(pattern.match(v)) for v in ("", "abc123def456:1", "abc123def456:12")] == [True] * 3
    refused = ("abc123def456", "abc123def456:DRAFT", "abc:0", "arn:aws:bedrock:x:1:guardrail/a:1")
    assert not any(pattern.match(value) for value in refused)
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["BEDROCK_GUARDRAIL"] == {"Ref": "BedrockGuardrail"}


def test_the_saved_query_ranks_tenants_by_what_the_operator_paid(template):
    query = template["Resources"]["TopTenantsByCostQuery"]["Properties"]
    assert query["LogGroupNames"] == [
        {"Ref": "FunctionLogGroup"},
        {"Ref": "StreamFunctionLogGroup"},
    ]
    text = query["QueryString"]
    # the fields the request log line carries (web/middleware.py, core/runner.py, usage/ledger.py)
    assert 'message = "request"' in text and 'api_key_source = "server"' in text
    assert "sum(cost_usd)" in text and "by client" in text and "sort cost_usd_paid desc" in text


def test_background_responses_run_in_their_own_function_started_once_by_the_stream_function(
    cloudformation, template
):
    resources = cloudformation["Resources"]
    background = template["Resources"]["BackgroundFunction"]["Properties"]
    assert background["Handler"] == "llm_server.background_handler.handler"
    assert background["Timeout"] == {"Ref": "BackgroundTimeout"}
    assert template["Parameters"]["BackgroundTimeout"]["MaxValue"] == 900  # Lambda's 15 minutes
    assert background["EventInvokeConfig"]["MaximumRetryAttempts"] == 0  # a run starts once
    handler = importlib.import_module("llm_server.background_handler").handler
    assert callable(handler)
    stream = template["Resources"]["StreamFunction"]["Properties"]
    assert stream["Environment"]["Variables"]["BACKGROUND_FUNCTION"] == {
        "Ref": "BackgroundFunction.Alias"
    }
    role = resources["StreamFunctionRole"]["Properties"]
    statements = [
        statement
        for policy in role.get("Policies", ())
        for statement in policy["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in statement["Action"]
    ]
    assert len(statements) == 1
    assert statements[0]["Resource"] == [
        {"Fn::GetAtt": ["BackgroundFunction", "Arn"]},
        {"Fn::Sub": "${BackgroundFunction.Arn}:*"},  # its versions and alias, no other function
    ]
    # the background function may read the table and the server's key, invoke nothing
    background_role = json.dumps(resources["BackgroundFunctionRole"]["Properties"])
    assert "lambda:InvokeFunction" not in background_role
