"""docs/settings.md is printed from the code: each setting's description, type and default, and
what template.yaml sets it to on AWS. The committed page is what the script prints."""

import pytest
from pydantic import SecretStr

from helpers.template import ROOT
from helpers.toolchain import load
from llm_server.config.settings import Settings

reference = load("settings_reference")


def test_the_committed_page_is_what_the_script_prints():
    committed = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert committed == reference.render(), "docs/settings.md is stale: run `make settings-doc`"


def test_every_setting_has_a_description_and_a_section():
    assert [name for name, f in Settings.model_fields.items() if not f.description] == []
    source = (ROOT / "functions" / "llm_server" / "config" / "settings.py").read_text("utf-8")
    sections = reference.sections(source)
    assert sorted(n for names in sections.values() for n in names) == sorted(Settings.model_fields)
    assert ("Serving", "") in sections
    assert (
        sections[
            ("Storage", "sessions and idempotency records (SQLite file locally, DynamoDB on AWS)")
        ][0]
        == "store"
    )


def test_a_secret_shows_no_default():
    secrets = [
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ()))
    ]
    assert {"admin_api_key", "client_api_keys", "openai_api_key"} <= set(secrets)
    for name in secrets:
        assert reference.default_of(Settings.model_fields[name]) == "—"
        assert reference.type_of(Settings.model_fields[name]) == "secret"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("server_port", "int 1..65535"),
        ("body_read_timeout_seconds", "float > 0"),
        ("max_tokens_limit", "int ≥ 1"),
        ("default_model", "str, not empty"),
        ("tenant_monthly_budget_usd", "float ≥ 0"),
        ("store", "`sqlite` or `dynamodb`"),
        ("log_level", "`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`"),
    ],
)
def test_types_with_their_bounds(name, shown):
    assert reference.type_of(Settings.model_fields[name]) == shown


def test_what_the_template_sets_on_aws():
    template = {
        "Parameters": {
            "Model": {"Type": "String", "Default": "gpt-4o-mini"},  # the app's default
            "Secret": {"Type": "String", "Default": "team/key"},
            "Budget": {"Type": "String", "Default": ""},  # blank is unset, as the app's
        },
        "Globals": {
            "Function": {
                "Environment": {
                    "Variables": {
                        "DEFAULT_MODEL": {"Ref": "Model"},
                        "OPENAI_SECRET_NAME": {"Ref": "Secret"},
                        "TENANT_MONTHLY_BUDGET_USD": {"Ref": "Budget"},
                        "STORE": "dynamodb",
                        "DYNAMODB_TABLE": {"Ref": "Table"},
                        "LOG_FILE": "",
                    }
                }
            }
        },
        "Resources": {
            "Chat": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Environment": {"Variables": {"ADMIN_IAM": "true"}}},
            },
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        },
    }
    on_aws = {name: reference.on_aws(name, template) for name in Settings.model_fields}
    assert on_aws["default_model"] == "parameter `Model`"
    assert on_aws["openai_secret_name"] == "parameter `Secret` (default `team/key`)"
    assert on_aws["tenant_monthly_budget_usd"] == "parameter `Budget`"
    assert on_aws["store"] == "`dynamodb`"
    assert on_aws["dynamodb_table"] == "`!Ref Table`"
    assert on_aws["log_file"] == "empty"
    assert on_aws["admin_iam"] == "`true` (Chat)"
    assert on_aws["host"] == ""
