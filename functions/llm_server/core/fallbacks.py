"""MODEL_FALLBACKS: a turn whose model failed in a way that is not the caller's runs once more.

On the fallback model, if there is one, the deadline has not passed, the caller may be served
it, and it does not move a turn the caller paid onto the operator's account (unless
MODEL_FALLBACKS_SERVER_PAYS says it may).
"""

from __future__ import annotations

import time
from dataclasses import replace

from llm_server.config.settings import Settings
from llm_server.core.keys import KeySource
from llm_server.core.preparation import Preparation
from llm_server.core.turn import RequestContext, Turn
from llm_server.exceptions import GuardrailUnavailableException, LLMServerException
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_fallback
from llm_server.utils.request_context import annotate


class Fallbacks:
    """Each model's fallback (`targets`), and the turn a failure falls back to."""

    def __init__(self, settings: Settings, preparation: Preparation) -> None:
        self._settings = settings
        self._preparation = preparation
        self.targets = settings.model_fallback_map()

    def of(self, turn: Turn, failed: ProviderFailed, context: RequestContext) -> Turn:
        """The turn on the failed model's fallback; its error raised when there is none to run.

        None to run: the model has no fallback, the deadline has passed, the fallback would
        not be served to this caller (no key for it, an unknown caller, no price), or it would
        move a turn the caller paid onto the server's account (unless
        MODEL_FALLBACKS_SERVER_PAYS says it may).
        """
        error = failed.error
        model = turn.model or self._settings.default_model
        target = self.targets.get(model)
        past = context.deadline is not None and time.monotonic() >= context.deadline
        if target is None or past:
            raise error
        fallback = replace(turn, model=target)
        try:
            _, key = self._preparation.checked(fallback, context)
        except LLMServerException:
            raise error from None
        moves_bill = key.source is KeySource.SERVER and failed.key_source != KeySource.SERVER
        if moves_bill and not self._settings.model_fallbacks_server_pays:
            raise error
        logger.warning(
            "model failed; falling back",
            extra={"fallback_from": model, "fallback_to": target, "error_code": error.code},
        )
        annotate(fallback_from=model, fallback_reason=error.code)
        record_fallback(model, target)
        return fallback


class ProviderFailed(Exception):
    """A provider's failure on a turn that may still fall back (see `Fallbacks.of`).

    `key_source` is who paid the failed turn: a fallback keeps it.
    """

    def __init__(self, error: LLMServerException, key_source: str) -> None:
        self.error = error
        self.key_source = key_source


def as_fallible(error: LLMServerException, fallible: bool, key_source: str) -> Exception:
    """What to raise for a provider's failure: wrapped to fall back, or as it is.

    Only a failure that is not the caller's may fall back: the provider's rate limit (429), a
    5xx or a timeout; never a bad request or a rejected key, nor the guardrail's failure (it
    is not the model's, and would check the fallback's turn too).
    """
    if isinstance(error, GuardrailUnavailableException):
        return error
    upstream_fault = error.status_code == 429 or error.status_code >= 500
    return ProviderFailed(error, key_source) if fallible and upstream_fault else error
