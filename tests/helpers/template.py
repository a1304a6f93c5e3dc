"""Read template.yaml as data: CloudFormation's short tags become their long `Fn::` form."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict:
    """template.yaml (or another CloudFormation template) as a dict."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)


def tool_env() -> dict[str, str]:
    """The environment for a tool in its own venv (SAM CLI, ministack): without PYTHONPATH,
    which points at the code under test (`make test-lambda`: a Python 3.13 build)."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def transformed_template(**parameters: str) -> dict:
    """The CloudFormation the SAM transform makes of template.yaml (run in the SAM CLI's venv)."""
    if not SAM_PYTHON.exists():
        raise RuntimeError("the SAM CLI venv is missing: run `make sam-check` (make test does)")
    args = [f"{name}={value}" for name, value in parameters.items()]
    result = subprocess.run(
        [
            str(SAM_PYTHON),
            str(ROOT / "tests" / "helpers" / "sam_transform.py"),
            str(TEMPLATE),
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=tool_env(),
    )
    return json.loads(result.stdout)
