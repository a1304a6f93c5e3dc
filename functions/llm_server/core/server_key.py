"""The server's own OpenAI key, used only in free mode when the caller brings none.

With `OPENAI_SECRET_NAME` set (a name or ARN), the key comes from AWS Secrets Manager through
Powertools' parameters utility: fetched on first need, cached for `SECRET_CACHE_SECONDS` (300)
across warm invocations, so a rotated key is picked up without a redeploy. The cache's age runs
on the store's clock (tests move one by hand): a key that old is fetched again (`force_fetch`).
Without a secret name, the key is `OPENAI_API_KEY` from the environment or `.env`. Failures are
`ConfigurationException`s that never contain key material; nothing failed or malformed is
cached, so the next request tries again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from llm_server.config.settings import Settings
from llm_server.core.keys import check_key_shape
from llm_server.exceptions import ConfigurationException, LLMServerException

SECRET_JSON_FIELD = "OPENAI_API_KEY"

_AWS_REASONS = {
    "ResourceNotFoundException": "the secret does not exist",
    "AccessDeniedException": "access to the secret was denied",
    "DecryptionFailure": "the secret could not be decrypted",
    "InvalidRequestException": "the secret is not available (deleted or disabled?)",
}


class ServerKeyStore:
    """Where the default key lives: Secrets Manager when a secret is named, else the settings."""

    def __init__(
        self,
        settings: Settings,
        secrets_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_name = settings.openai_secret_name
        self._max_age = settings.secret_cache_seconds
        self._env_key = settings.openai_api_key
        self._secrets_client = secrets_client
        self._clock = clock
        self._provider: Any = None
        self._fetched_at: float | None = None

    @property
    def source(self) -> str:
        """`secrets_manager`, `env` or `none` (without fetching anything)."""
        if self._secret_name:
            return "secrets_manager"
        return "env" if self._env_key is not None else "none"

    @property
    def configured(self) -> bool:
        """Whether a default key is set up (without fetching it)."""
        return self.source != "none"

    def get(self) -> SecretStr | None:
        """The default key, or None when the server has none."""
        if not self._secret_name:
            return self._env_key
        try:
            return SecretStr(parse_secret(self._fetch()))
        except ConfigurationException:
            # Cache only values that parse: once the operator fixes the secret, the next
            # request reads it, not the bad value for the rest of SECRET_CACHE_SECONDS.
            self._secrets().clear_cache()
            self._fetched_at = None
            raise

    def prime(self) -> None:
        """Make the Secrets Manager client now (botocore and its model), without reading the key."""
        if self._secret_name:
            self._secrets()

    def renew(self) -> None:
        """Forget the client and the cached key with its age (after a SnapStart restore)."""
        self._provider = None
        self._fetched_at = None

    def _secrets(self) -> Any:
        """Powertools' provider (its cache), on a client from the process's session."""
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            client = self._secrets_client
            if client is None:  # Powertools would make one on a session of its own
                from llm_server.utils import aws

                client = aws.client("secretsmanager")
            self._provider = SecretsProvider(boto3_client=client)
        return self._provider

    def _fetch(self) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
        try:
            value = self._secrets().get(self._secret_name, max_age=self._max_age, force_fetch=stale)
        except GetParameterError as exc:
            raise ConfigurationException(
                f"The server's OpenAI key could not be read from Secrets Manager: {_reason(exc)}",
                code="secret_unavailable",
            ) from None
        if stale:
            self._fetched_at = now
        return value.decode() if isinstance(value, bytes) else str(value)


def parse_secret(raw: str) -> str:
    """The key inside a secret: the plain string, or the `OPENAI_API_KEY` field of a JSON object."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise _bad_secret("it starts with '{' but is not valid JSON") from None
        field = document.get(SECRET_JSON_FIELD) if isinstance(document, dict) else None
        if not isinstance(field, str):
            raise _bad_secret(f"its JSON has no string field {SECRET_JSON_FIELD}")
        text = field.strip()
    try:
        check_key_shape(text, param="server key")
    except LLMServerException:
        raise _bad_secret("its value does not look like an OpenAI key") from None
    return text


def _bad_secret(why: str) -> ConfigurationException:
    return ConfigurationException(
        f"The server's OpenAI key secret is malformed: {why}", code="secret_malformed"
    )


def _reason(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code", "")
    return _AWS_REASONS.get(code, f"Secrets Manager error {code}" if code else "it was unreachable")
