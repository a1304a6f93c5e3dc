"""The server's default key from Secrets Manager, on moto's real HTTP endpoint."""

import json
import time
import uuid

import pytest
from botocore.stub import Stubber

from helpers.aws import CallCounter, secrets_client
from helpers.clock import FakeClock
from helpers.settings import make_settings
from llm_server.core.server_key import ServerKeyStore
from llm_server.exceptions import ConfigurationException

KEY_A = "sk-server-a-" + "a" * 32
KEY_B = "sk-server-b-" + "b" * 32


@pytest.fixture
def client(moto_endpoint):
    return secrets_client(moto_endpoint)


@pytest.fixture
def secret_name():
    return f"llm-server/test/{uuid.uuid4().hex}"


def store_for(client, name, ttl=300, clock=time.monotonic):
    settings = make_settings(openai_secret_name=name, secret_cache_seconds=ttl)
    return ServerKeyStore(settings, client, clock)


def test_reads_a_plain_key(client, secret_name):
    client.create_secret(Name=secret_name, SecretString=KEY_A)
    store = store_for(client, secret_name)
    assert store.source == "secrets_manager"
    assert store.get().get_secret_value() == KEY_A


def test_reads_the_key_from_a_json_secret(client, secret_name):
    client.create_secret(Name=secret_name, SecretString=json.dumps({"OPENAI_API_KEY": KEY_B}))
    assert store_for(client, secret_name).get().get_secret_value() == KEY_B


def test_reads_by_arn(client, secret_name):
    arn = client.create_secret(Name=secret_name, SecretString=KEY_A)["ARN"]
    assert store_for(client, arn).get().get_secret_value() == KEY_A


def test_fetches_once_and_caches_across_invocations(client, secret_name):
    client.create_secret(Name=secret_name, SecretString=KEY_A)
    calls = CallCounter(client, "GetSecretValue")
    store = store_for(client, secret_name)
    assert calls.count == 0  # nothing is fetched until a request needs it
    for _ in range(25):
        assert store.get().get_secret_value() == KEY_A
    assert calls.count == 1


def test_a_rotated_key_is_picked_up_after_the_ttl(client, secret_name):
    client.create_secret(Name=secret_name, SecretString=KEY_A)
    calls = CallCounter(client, "GetSecretValue")
    clock = FakeClock()
    store = store_for(client, secret_name, ttl=300, clock=clock)
    assert store.get().get_secret_value() == KEY_A
    client.put_secret_value(SecretId=secret_name, SecretString=KEY_B)
    clock.now += 299.9
    assert store.get().get_secret_value() == KEY_A  # still cached
    clock.now += 0.1
    assert store.get().get_secret_value() == KEY_B
    assert calls.count == 2


def test_a_missing_secret_is_a_clear_configuration_error_and_is_retried(client, secret_name):
    calls = CallCounter(client, "GetSecretValue")
    store = store_for(client, secret_name)
    with pytest.raises(ConfigurationException) as caught:
        store.get()
    assert caught.value.status_code == 500
    assert caught.value.code == "secret_unavailable"
    assert "does not exist" in caught.value.message
    client.create_secret(Name=secret_name, SecretString=KEY_A)
    assert store.get().get_secret_value() == KEY_A  # the failure was not cached
    assert calls.count == 2


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ('{"OPENAI_API_KEY": "sk-broken', "not valid JSON"),
        (json.dumps({"api_key": KEY_A}), "no string field OPENAI_API_KEY"),
        (json.dumps({"OPENAI_API_KEY": 42}), "no string field OPENAI_API_KEY"),
        ("not-a-key-at-all-but-long-enough", "does not look like an OpenAI key"),
    ],
)
def test_a_malformed_secret_is_named_without_showing_it(client, secret_name, secret, why):
    client.create_secret(Name=secret_name, SecretString=secret)
    with pytest.raises(ConfigurationException) as caught:
        store_for(client, secret_name).get()
    assert caught.value.code == "secret_malformed"
    assert why in caught.value.message
    assert "sk-broken" not in caught.value.message and KEY_A not in caught.value.message


def test_access_denied_is_reported_as_such(client, secret_name):
    """moto does not enforce IAM, so this one fault is injected with botocore's Stubber."""
    with Stubber(client) as stubber:
        stubber.add_client_error("get_secret_value", "AccessDeniedException", "not allowed", 400)
        with pytest.raises(ConfigurationException) as caught:
            store_for(client, secret_name).get()
    assert "access to the secret was denied" in caught.value.message


def test_without_a_secret_name_the_env_key_is_used(monkeypatch):
    store = ServerKeyStore(make_settings(openai_api_key=KEY_A))
    assert store.source == "env"
    assert store.get().get_secret_value() == KEY_A
    assert ServerKeyStore(make_settings()).source == "none"


def test_a_fixed_secret_is_read_at_once_not_after_the_cache_ttl(client, secret_name):
    client.create_secret(Name=secret_name, SecretString="not a key")
    store = store_for(client, secret_name, ttl=300)
    with pytest.raises(ConfigurationException):
        store.get()
    client.put_secret_value(SecretId=secret_name, SecretString=KEY_A)  # the operator fixes it
    assert store.get().get_secret_value() == KEY_A
