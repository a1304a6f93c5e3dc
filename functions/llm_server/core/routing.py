"""Which provider answers a turn, and with which key.

The model a request names picks its provider (the first that lists it: the local model's name,
a Bedrock model id); a model no provider lists goes where `LLM_PROVIDER` says (in `auto`: OpenAI
when a key is at hand, else the local model). What the provider's `payer` is decides the key:
none for the local model; for OpenAI, in normal mode only the caller's key, in free mode the
caller's, else the server's (the server's only for callers it knows, `Caller.known`); for a
provider the operator's account pays (Bedrock), known callers only, billed as the server's.
Embeddings are routed the same way by their model (`route_embedding`); a chat model asked to
embed, or an embedding model to chat, is a 400 naming `model`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from pydantic import SecretStr

from llm_server.config.settings import Settings
from llm_server.core.keys import NO_KEY, KeySource, SelectedKey, select_api_key
from llm_server.core.server_key import ServerKeyStore
from llm_server.core.text import bounded
from llm_server.core.turn import CALLER_KEY, RequestContext, Turn
from llm_server.exceptions import (
    AuthenticationException,
    BadRequestException,
    ConfigurationException,
    LLMServerException,
    NotFoundException,
    OpenAIClientException,
)
from llm_server.providers.base import ChatProvider, Embedder, Payer
from llm_server.providers.registry import claimed_by
from llm_server.utils.log import logger

OPERATOR = SelectedKey(None, KeySource.SERVER)
"""The "key" of a provider the operator's own account pays: billed as the server's key."""


class Routing:
    """Chooses the provider and the key of each turn."""

    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, ChatProvider],
        server_key: ServerKeyStore,
    ) -> None:
        self._settings = settings
        self._providers = providers
        self._server_key = server_key
        self.embedders = {n: p for n, p in providers.items() if isinstance(p, Embedder)}
        """The providers that embed text, by name (in the registry's order)."""
        self.aliases = settings.model_alias_map()

    def aliased(self, turn: Turn) -> Turn:
        """The turn on the model its name is an alias of (MODEL_ALIASES), if it is one.

        Resolved before anything is routed, priced, recorded or limited: an alias is only
        another name a client may send (Claude Code sends its own model names).
        """
        target = self.aliases.get(turn.model or self._settings.default_model)
        return turn if target is None else replace(turn, model=target)

    def aliases_of(self, model: str) -> list[str]:
        """The names MODEL_ALIASES gives `model`."""
        return [alias for alias, target in self.aliases.items() if target == model]

    def named(self, model: str | None) -> ChatProvider | None:
        """The provider that lists `model` by name, if any."""
        if model:
            for provider in self._providers.values():
                if model in provider.models():
                    return provider
        return None

    def route(self, turn: Turn, context: RequestContext) -> tuple[ChatProvider, SelectedKey]:
        """Choose the provider (by the model's name, else LLM_PROVIDER) and the key."""
        model = turn.model or self._settings.default_model
        provider = self.named(model)
        if provider is None:
            if self._embedder_of(model) is not None:
                raise _wrong_kind(model, "an embedding model", "POST /v1/embeddings")
            _refuse_unlisted(model)
            return self._unnamed(turn, context)
        return provider, self._key_for(
            provider.payer, model, turn.caller_key, turn.free_mode, context
        )

    def _key_for(
        self, payer: Payer, model: str, caller_key: str, free_mode: bool, context: RequestContext
    ) -> SelectedKey:
        """The key a call to a provider with this `payer` goes on (a 401 when there is none)."""
        if payer == "operator":
            return self._operator_pays(model, context)
        if payer == "key":
            return self._required_key(caller_key, free_mode, context)
        return NO_KEY

    def _embedder_of(self, model: str) -> Embedder | None:
        """The provider that lists `model` among its embedding models, if any."""
        return next((e for e in self.embedders.values() if model in e.embedding_models()), None)

    def _chats_with(self, model: str) -> bool:
        """Whether `model` is a chat model here: a provider's by name, or an OpenAI one listed."""
        openai = [self._settings.default_model, *self._settings.openai_model_list()]
        return self.named(model) is not None or ("openai" in self._providers and model in openai)

    def route_embedding(
        self, model: str, caller_key: str, free_mode: bool, context: RequestContext
    ) -> tuple[Embedder, SelectedKey]:
        """The embedder of `model` (its lister, else OpenAI's, which takes any name) and key.

        A chat model is a 400 naming `model`; a model of a provider's kind it does not list,
        or any unlisted model where no embedder takes any name, a 404.
        """
        embedder = self._embedder_of(model)
        if embedder is None:
            if self._chats_with(model):
                raise _wrong_kind(model, "a chat model", "POST /v1/chat/completions")
            _refuse_unlisted(model)
            embedder = self._any_embedding_model()
        if embedder is None:
            raise NotFoundException(
                f"No embedding model {bounded(model)!r} here: GET /v1/models lists those that are",
                code="model_not_found",
                param="model",
            )
        return embedder, self._key_for(embedder.payer, model, caller_key, free_mode, context)

    def _any_embedding_model(self) -> Embedder | None:
        """OpenAI's embedder, which passes on any model name, where OpenAI is on."""
        if self._settings.llm_provider == "local":
            return None
        return self.embedders.get("openai")

    def _unnamed(self, turn: Turn, context: RequestContext) -> tuple[ChatProvider, SelectedKey]:
        """A model no provider lists: OpenAI with a key, or the local model (LLM_PROVIDER)."""
        openai, local = self._providers.get("openai"), self._providers.get("local")
        if openai is None or self._settings.llm_provider == "local":
            if local is None:
                raise ConfigurationException("No provider serves unnamed models on this server")
            return local, NO_KEY
        if self._settings.llm_provider == "auto" and local is not None:
            key = self._key(turn.caller_key, turn.free_mode, context)
            return (openai, key) if key.source is not KeySource.NONE else (local, NO_KEY)
        return openai, self._required_key(turn.caller_key, turn.free_mode, context)

    def _key(self, caller_key: str, free_mode: bool, context: RequestContext) -> SelectedKey:
        free_mode = free_mode and self._settings.free_mode_enabled
        return select_api_key(caller_key, free_mode, self._server_key_for(context), CALLER_KEY)

    def _required_key(
        self, caller_key: str, free_mode: bool, context: RequestContext
    ) -> SelectedKey:
        key = self._key(caller_key, free_mode, context)
        if key.source is not KeySource.NONE:
            return key
        raise AuthenticationException(
            f"An OpenAI API key is required: send {CALLER_KEY}, or use free mode to use the "
            "server's key" + self._free_mode_note(),
            code="missing_api_key",
            param=CALLER_KEY,
        )

    @staticmethod
    def _operator_pays(model: str, context: RequestContext) -> SelectedKey:
        """The operator's account pays: only for a caller the server knows, on its quotas."""
        caller = context.caller
        if not caller.known:
            raise AuthenticationException(
                f"{model} is billed to this server's own account: like free mode, it "
                f"serves identified callers only. {caller.free_mode_refusal}",
                code="client_credential_required",
                param="X-Api-Key",
            )
        return OPERATOR

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


def _refuse_unlisted(model: str) -> None:
    """A model of a provider's kind (a Bedrock id) that this server does not list: a 404."""
    owner = claimed_by(model)
    if owner is not None:
        raise NotFoundException(
            f"The {owner} model {bounded(model)!r} is not served here: GET /v1/models lists "
            "those that are",
            code="model_not_found",
            param="model",
        )


def _wrong_kind(model: str, kind: str, route: str) -> BadRequestException:
    """A model asked for what it does not do: a chat model to embed, or the reverse."""
    return BadRequestException(
        f"{bounded(model)!r} is {kind}: send it to {route}",
        code="model_not_supported",
        param="model",
    )


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
