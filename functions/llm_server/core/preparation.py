"""A turn made a provider's request: every check that can refuse it before anything runs.

Its model within `MAX_TOKENS_LIMIT` and the key's policy (by the model's name or an alias), its
provider and key (`routing.py`), content that provider can read, options it honours, and on the
operator's account, a price. What passes is the `GenerationRequest` the provider is given.
"""

from __future__ import annotations

from llm_server.config.settings import Settings
from llm_server.core.key_policy import check_model, check_payer
from llm_server.core.keys import KeySource, SelectedKey
from llm_server.core.routing import Routing
from llm_server.core.spending import Spending
from llm_server.core.turn import RequestContext, Turn
from llm_server.exceptions import BadRequestException, ValidationException
from llm_server.providers.base import ChatProvider
from llm_server.utils.request_context import annotate
from llm_server.values import ChatMessage, GenerationRequest


class Preparation:
    """Checks turns and makes their requests, on the runner's routing and spending."""

    def __init__(self, settings: Settings, routing: Routing, spending: Spending) -> None:
        self._settings = settings
        self._routing = routing
        self._spending = spending

    def names(self, model: str) -> tuple[str, ...]:
        """A model's name and its aliases: a key's policy may name the model by either."""
        return (model, *self._routing.aliases_of(model))

    def checked(self, turn: Turn, context: RequestContext) -> tuple[ChatProvider, SelectedKey]:
        """The turn's provider and key, once the turn is one they may serve; else its 4xx."""
        limit = self._settings.max_tokens_limit
        if turn.max_tokens is not None and turn.max_tokens > limit:
            raise ValidationException(
                f"max_tokens must be between 1 and {limit}", param="max_tokens"
            )
        model = turn.model or self._settings.default_model
        check_model(context.caller.policy, self.names(model))
        provider, key = self._routing.route(turn, context)
        readable(provider, turn.messages)
        for name in turn.options.chosen():
            if name not in provider.honours:
                param = turn.options.param_of(name)
                raise BadRequestException(
                    f"{param} is not supported by the {provider.name} provider",
                    param=param,
                    code="unsupported_parameter",
                )
        check_payer(context.caller.policy, model, key.source is KeySource.SERVER)
        if key.source is KeySource.SERVER:
            self._spending.require_price(provider.name, provider.payer, model)
        return provider, key

    def prepare(
        self, turn: Turn, context: RequestContext
    ) -> tuple[ChatProvider, GenerationRequest]:
        """The turn's provider and the request it is given, once checked."""
        settings = self._settings
        provider, key = self.checked(turn, context)
        annotate(provider=provider.name, api_key_source=key.source.value)
        request = GenerationRequest(
            instructions=turn.instructions,
            messages=turn.messages,
            model=turn.model or settings.default_model,
            temperature=settings.default_temperature
            if turn.temperature is None
            else turn.temperature,
            max_tokens=turn.max_tokens or settings.default_max_tokens,
            api_key=key.value,
            key_source=key.source.value,
            deadline=context.deadline,
            options=turn.options,
            cache_scope=context.caller.cache_scope,
        )
        return provider, request


def readable(provider: ChatProvider, messages: tuple[ChatMessage, ...]) -> None:
    """Refuse images, and documents other than text, for a provider that reads text only.

    A text document reaches such a provider as text (its provider inlines it).
    """
    if "images" not in provider.honours and any(m.images for m in messages):
        raise BadRequestException(
            f"The {provider.name} model reads text only: images are not supported there",
            param="image_url",
            code="unsupported_content",
        )
    binary = next((d for m in messages for d in m.documents if d.text is None), None)
    if binary is not None and "documents" not in provider.honours:
        raise BadRequestException(
            f"{binary.param}: the {provider.name} model reads text only: send documents as "
            "text (a PDF is read by the Bedrock and OpenAI models)",
            param=binary.param,
            code="unsupported_content",
        )
