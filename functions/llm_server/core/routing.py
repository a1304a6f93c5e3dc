"""Which provider answers a turn, and with which key.

`LLM_PROVIDER` decides, or in `auto` the model's name (the local model's name runs it locally).
Normal mode uses only the caller's key; free mode the caller's, else the server's, and the
server's only for callers the server knows (`Caller.known`).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from llm_server.config.settings import Settings
from llm_server.core.keys import NO_KEY, KeySource, SelectedKey, select_api_key
from llm_server.core.server_key import ServerKeyStore
from llm_server.core.turn import CALLER_KEY, RequestContext, Turn
from llm_server.exceptions import (
    AuthenticationException,
    LLMServerException,
    OpenAIClientException,
)
from llm_server.providers.base import ChatProvider
from llm_server.utils.log import logger


class Routing:
    """Chooses the provider and the key of each turn."""

    def __init__(
        self,
        settings: Settings,
        openai: ChatProvider,
        local: ChatProvider,
        server_key: ServerKeyStore,
    ) -> None:
        self._settings = settings
        self._openai = openai
        self._local = local
        self._server_key = server_key

    def route(self, turn: Turn, context: RequestContext) -> tuple[ChatProvider, SelectedKey]:
        """Choose the provider (LLM_PROVIDER, or the local model by name) and the key.

        The server's key is only for callers the server knows (see `Caller.known`).
        """
        mode = self._settings.llm_provider
        if mode == "local" or (
            mode == "auto" and turn.model and turn.model in self._local.models()
        ):
            return self._local, NO_KEY
        free_mode = turn.free_mode and self._settings.free_mode_enabled
        key = select_api_key(turn.caller_key, free_mode, self._server_key_for(context), CALLER_KEY)
        if key.source is not KeySource.NONE:
            return self._openai, key
        if mode == "auto":
            return self._local, NO_KEY
        raise AuthenticationException(
            f"An OpenAI API key is required: send {CALLER_KEY}, or use free mode to use the "
            "server's key" + self._free_mode_note(),
            code="missing_api_key",
            param=CALLER_KEY,
        )

    def _server_key_for(self, context: RequestContext) -> Callable[[], SecretStr | None]:
        """The server key's getter, or one that refuses a caller the server does not know."""
        caller = context.caller
        if caller.known:
            return self._server_key.get

        def refuse() -> SecretStr | None:
            if not self._server_key.configured:
                return None  # nothing to refuse: the usual "no key" answer follows
            raise AuthenticationException(
                caller.free_mode_refusal, code="client_credential_required", param="X-Api-Key"
            )

        return refuse

    def _free_mode_note(self) -> str:
        if not self._settings.free_mode_enabled:
            return " (free mode is switched off on this server)"
        return "" if self._server_key.configured else " (this server has none configured)"


def rejected_key(source: str) -> LLMServerException:
    """What a key the provider rejected means: the caller's (401) or the operator's (502)."""
    if source != KeySource.SERVER:
        return AuthenticationException(
            f"OpenAI rejected the key you sent in {CALLER_KEY}", param=CALLER_KEY
        )
    # Not the caller's fault: the server's own key is bad. Say so loudly, answer 502.
    logger.error("the server's default OpenAI key was rejected upstream")
    return OpenAIClientException(
        "The server's OpenAI key was rejected upstream; the operator has to fix it",
        code="server_key_rejected",
    )
