"""Settings: the seed's names and defaults, env and .env, and clear errors for bad values."""

import pytest

from llm_server.config.settings import load_settings
from llm_server.exceptions import ConfigurationException


def test_defaults_match_the_contract(monkeypatch):
    for name in ("OPENAI_API_KEY", "LOG_FILE", "LLM_PROVIDER", "SERVER_PORT", "HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.server_port == 5601
    assert settings.host == "127.0.0.1"
    assert settings.default_model == "gpt-4o-mini"
    assert settings.default_temperature == 0.7
    assert settings.default_max_tokens == 1000
    assert settings.default_system_message == "당신은 도움이 되는 AI 어시스턴트입니다."
    assert settings.log_level == "INFO"
    assert settings.log_file == "logs/app.log"
    assert settings.openai_api_key is None
    assert settings.max_concurrent_requests == 10
    assert settings.max_body_bytes == 1_048_576
    assert settings.llm_provider == "auto"


def test_environment_variables_override(monkeypatch):
    monkeypatch.setenv("SERVER_PORT", "8080")
    monkeypatch.setenv("DEFAULT_MODEL", "gpt-4.1-mini")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings(_env_file=None)
    assert (settings.server_port, settings.default_model, settings.log_level) == (
        8080,
        "gpt-4.1-mini",
        "DEBUG",
    )


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DEFAULT_SYSTEM_MESSAGE=너는 시인이다.\nLLM_PROVIDER=local\n", encoding="utf-8"
    )
    settings = load_settings(_env_file=env_file)
    assert settings.default_system_message == "너는 시인이다."
    assert settings.llm_provider == "local"


def test_blank_key_counts_as_unset(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "  ")
    assert load_settings(_env_file=None).openai_api_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("SERVER_PORT", "not-a-port"), ("DEFAULT_TEMPERATURE", "3"), ("LLM_PROVIDER", "magic")],
)
def test_invalid_values_fail_with_the_variable_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationException) as caught:
        load_settings(_env_file=None)
    assert name in caught.value.message


def test_the_key_is_not_shown_in_the_settings_repr(monkeypatch):
    secret = "sk-settings-" + "z" * 30
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    settings = load_settings(_env_file=None)
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
