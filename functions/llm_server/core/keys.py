"""API-key selection: which OpenAI key a request may use, and where it came from.

Normal mode uses only the caller's key. Free mode uses the caller's key when given, else the
server's default key. Keys are checked for shape before use; no message ever contains a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import SecretStr

from llm_server.exceptions import AuthenticationException, ValidationException

MIN_KEY_LENGTH = 20
MAX_KEY_LENGTH = 256


class KeySource(StrEnum):
    """Where the key for a request came from, reported as `api_key_source`."""

    USER = "user"
    SERVER = "server"
    NONE = "none"


@dataclass(frozen=True)
class SelectedKey:
    """The chosen key (None when there is none) and its source."""

    value: SecretStr | None
    source: KeySource


NO_KEY = SelectedKey(None, KeySource.NONE)


def check_key_shape(key: str, param: str = "openai_api_key") -> None:
    """Reject a key that cannot be an OpenAI key, before any call is made.

    A key with non-ASCII characters is a 401, not a crash in the HTTP client's header encoding.
    """
    if not key.isascii():
        raise AuthenticationException(
            f"{param} is not a valid OpenAI key: it has non-ASCII characters", param=param
        )
    # ASCII by now: its whitespace other than " " is unprintable (a scan per character cost
    # ~10 µs a request)
    if " " in key or not key.isprintable():
        raise ValidationException(
            f"{param} contains whitespace or control characters",
            param=param,
            code="invalid_api_key",
        )
    if not key.startswith("sk-") or not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH:
        raise AuthenticationException(
            f"{param} is not a valid OpenAI key: it must start with 'sk-' and be "
            f"{MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} characters long",
            param=param,
        )


def select_api_key(
    caller_key: str,
    free_mode: bool,
    server_key: Callable[[], SecretStr | None],
    param: str = "openai_api_key",
) -> SelectedKey:
    """Pick the key for a request; `server_key` is called only when free mode needs it.

    `param` names where the caller put the key, for error messages.
    """
    if caller_key:
        check_key_shape(caller_key, param)
        return SelectedKey(SecretStr(caller_key), KeySource.USER)
    if free_mode:
        default = server_key()
        if default is not None:
            return SelectedKey(default, KeySource.SERVER)
    return NO_KEY
