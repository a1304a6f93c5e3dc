"""The server's own OpenAI key, used only in free mode when the caller brings none."""

from __future__ import annotations

from pydantic import SecretStr

from llm_server.config.settings import Settings


class ServerKeyStore:
    """Reads the default key from `OPENAI_API_KEY` (env or `.env`)."""

    def __init__(self, settings: Settings) -> None:
        self._env_key = settings.openai_api_key

    @property
    def configured(self) -> bool:
        """Whether a default key is set up (without fetching it)."""
        return self._env_key is not None

    def get(self) -> SecretStr | None:
        """The default key, or None when the server has none."""
        return self._env_key
