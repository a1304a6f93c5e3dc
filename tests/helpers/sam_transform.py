"""Run the SAM transform locally and print the CloudFormation it produces, as JSON.

Runs under the SAM CLI's own venv (.tools/sam/bin/python), which has aws-sam-translator, so the
app's venv keeps its own pins: python tests/helpers/sam_transform.py template.yaml [Key=Value ...]
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class ManagedPolicies:
    """The AWS managed policies SAM may attach, by name (the real loader asks IAM)."""

    def load(self):
        names = [
            "AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess",
            "AWSXRayDaemonWriteAccess",
        ]
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in names}


def as_packaged(template: dict) -> dict:
    """Point local code folders at S3, as `sam package` would, so the transform accepts them."""
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for field in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(field), str) and not properties[field].startswith("s3://"):
                properties[field] = f"s3://artifacts/{properties[field].strip('/')}.zip"
    return template


def language_extensions(node, values: dict, evaluating: bool = False):
    """What AWS::LanguageExtensions does to this template before SAM: each `Fn::ToJsonString`
    becomes the JSON text of its value, the parameters in it resolved to theirs."""
    if isinstance(node, list):
        return [language_extensions(item, values, evaluating) for item in node]
    if not isinstance(node, dict):
        return node
    if evaluating and list(node) == ["Ref"] and node["Ref"] in values:
        return values[node["Ref"]]
    if list(node) == ["Fn::ToJsonString"]:
        value = language_extensions(node["Fn::ToJsonString"], values, evaluating=True)
        return json.dumps(value, separators=(",", ":"))
    return {key: language_extensions(value, values, evaluating) for key, value in node.items()}


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-2")
    with open(sys.argv[1], encoding="utf-8") as handle:
        template = as_packaged(yaml_parse(handle.read()))
    parameters = dict(arg.split("=", 1) for arg in sys.argv[2:])
    parameters.setdefault("AWS::Region", "ap-northeast-2")
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    template = language_extensions(template, {**values, **parameters})
    print(json.dumps(transform(template, parameters, ManagedPolicies())))


if __name__ == "__main__":
    main()
