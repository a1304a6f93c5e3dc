"""Key selection: normal mode uses only the caller's key; free mode falls back to the server's."""

import pytest
from pydantic import SecretStr

from llm_server.core.keys import KeySource, select_api_key
from llm_server.exceptions import AuthenticationException, ValidationException

CALLER_KEY = "sk-caller-" + "a" * 30
SERVER_KEY = SecretStr("sk-server-" + "b" * 30)


def no_server_key():
    return None


def server_key_must_not_be_read():
    raise AssertionError("the server key was read although it was not needed")


def test_normal_mode_uses_the_callers_key():
    key = select_api_key(CALLER_KEY, False, server_key_must_not_be_read)
    assert key.source is KeySource.USER
    assert key.value.get_secret_value() == CALLER_KEY


def test_normal_mode_without_a_key_never_uses_the_servers_key():
    key = select_api_key("", False, lambda: SERVER_KEY)
    assert key.source is KeySource.NONE and key.value is None


def test_free_mode_prefers_the_callers_key():
    key = select_api_key(CALLER_KEY, True, server_key_must_not_be_read)
    assert key.source is KeySource.USER


def test_free_mode_falls_back_to_the_servers_key():
    key = select_api_key("", True, lambda: SERVER_KEY)
    assert key.source is KeySource.SERVER and key.value == SERVER_KEY


def test_free_mode_without_any_key_is_none():
    assert select_api_key("", True, no_server_key).source is KeySource.NONE


@pytest.mark.parametrize(
    "bad",
    [
        "   ",
        "sk-abc def" + "x" * 20,
        "sk-" + "x" * 20 + "\n",
        "sk-\t" + "x" * 20,
        "sk-\x0b" + "x" * 20,
    ],
)
def test_whitespace_in_a_key_is_rejected_without_echoing_it(bad):
    with pytest.raises(ValidationException) as caught:
        select_api_key(bad, False, no_server_key)
    assert caught.value.param == "openai_api_key"
    assert not bad.strip() or bad.strip() not in caught.value.message


@pytest.mark.parametrize("bad", ["hello-world-not-a-key-at-all", "sk-short", "sk-" + "x" * 300])
def test_wrong_prefix_or_length_is_a_401_without_echoing_it(bad):
    with pytest.raises(AuthenticationException) as caught:
        select_api_key(bad, True, no_server_key)
    assert caught.value.status_code == 401
    assert bad not in caught.value.message
