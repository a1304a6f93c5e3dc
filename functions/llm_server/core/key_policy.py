"""What a gateway key's policy asks of each turn: its models, who may pay, its rates.

`check_model` and `check_payer` run where the runner checks a turn (`TurnRunner._checked`), on
the model name the turn resolved to, before and after routing chose its key, so a fallback is
checked as its own turn; `key_gates` are the key's rate
limits as gates (`core/limits.py`), asked at once with free mode's. The key's budget is free
mode's budget counter with the key's amount (`core/admission.py`). Policies come with the caller
(`Caller.policy`): locally from the key store, on AWS from the authorizer's context.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

from llm_server.core.limits import Counter, Gates, Window
from llm_server.core.text import bounded
from llm_server.core.turn import CALLER_KEY
from llm_server.exceptions import PermissionException, RateLimitException

if TYPE_CHECKING:
    from llm_server.keys.records import KeyPolicy

MINUTE = 60
WINDOW = "key-rpm"


def check_model(policy: KeyPolicy | None, names: tuple[str, ...]) -> None:
    """Refuse a model off the key's list (before routing: whatever key it would run on).

    `names` is the model's name and its aliases (MODEL_ALIASES): the list may name either.
    """
    if policy is not None and not any(map(policy.allows, names)):
        model = names[0]
        allowed = ", ".join(policy.models or ())
        raise PermissionException(
            f"This key may not use {bounded(model)!r}; it may use: {bounded(allowed, 512)}",
            code="model_not_allowed",
            param="model",
        )


def check_payer(policy: KeyPolicy | None, model: str, operator_pays: bool) -> None:
    """Refuse the operator's money to a key that may not spend it (once routing chose a key)."""
    if policy is not None and operator_pays and not policy.paid_models:
        raise PermissionException(
            f"This key may not be served on the server's account ({bounded(model)!r} would be "
            f"paid by the operator): send your own key in {CALLER_KEY}, or use a model that "
            "needs none",
            code="paid_models_not_allowed",
            param="model",
        )


def listed(policy: KeyPolicy | None, names: tuple[str, ...], operator_pays: bool) -> bool:
    """Whether `GET /v1/models` lists the model (by `names`, as `check_model`) to this policy."""
    if policy is None:
        return True
    return any(map(policy.allows, names)) and (policy.paid_models or not operator_pays)


def key_gates(owner: str, policy: KeyPolicy, tokens: int, now: float) -> Gates:
    """The key's `rpm` (a sliding window) and `tpm` (tokens reserved in the clock minute)."""
    windows: tuple[Window, ...] = ()
    if policy.rpm is not None:
        windows = (Window(owner, WINDOW, policy.rpm, MINUTE, partial(_too_fast, policy.rpm)),)
    if policy.tpm is None:
        return Gates(windows)
    minute = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now))
    refusal = partial(_out_of_tokens, policy.tpm, tokens, MINUTE - now % MINUTE)
    counter = Counter(owner, f"tpm#{minute}", tokens, policy.tpm, 2 * MINUTE, "tokens", refusal)
    return Gates(windows, (counter,))


def _too_fast(rpm: int, wait: float) -> RateLimitException:
    return RateLimitException(
        f"This key allows {rpm} requests a minute", code="key_rate_limited", retry_after=wait
    )


def _out_of_tokens(tpm: int, tokens: int, wait: float, used: int) -> RateLimitException:
    return RateLimitException(
        f"This key allows {tpm} tokens a minute; {max(0, tpm - used)} are left this minute "
        f"(UTC) and this request may need {tokens} (its input and max_tokens): lower "
        "max_tokens, or come back when the minute turns",
        code="key_rate_limited",
        retry_after=wait,
    )
