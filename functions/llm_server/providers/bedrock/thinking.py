"""A turn's reasoning as Claude's extended thinking on Bedrock, or its refusal by name.

Converse takes Claude's `thinking` through `additionalModelRequestFields`: `enabled` with a
`budget_tokens` of at least 1,024 and below `max_tokens`. An effort becomes a budget (low 2,048,
medium 8,192, high 24,576), at most half of `max_tokens` so the answer keeps room. Thinking
cannot be combined with a forced tool (a required or named `tool_choice`, or a JSON answer
beside tools): refused by name when asked for outright; an adaptive request (the model decides)
just does not think there, nor where the model cannot think, nor where `max_tokens` leaves no
room for a 1,024-token budget.
"""

from __future__ import annotations

from llm_server.exceptions import BadRequestException
from llm_server.providers.bedrock.models import thinks
from llm_server.values import GenerationRequest, Reasoning

MIN_BUDGET = 1024
BUDGETS = {"minimal": MIN_BUDGET, "low": 2048, "medium": 8192, "high": 24576}


def thinking_budget(request: GenerationRequest, forced_tool: bool) -> int | None:
    """The thinking budget for this request (None: it does not think), or a 400 naming why."""
    reasoning = request.options.reasoning
    if reasoning is None:
        return None
    if not thinks(request.model) or forced_tool:
        if reasoning.adaptive:
            return None
        why = (
            "cannot reason"
            if not thinks(request.model)
            else "cannot think and be forced to call a tool"
        )
        raise BadRequestException(
            f"{reasoning.param}: {request.model} {why} on Bedrock (Claude 3.7 and later "
            "think, with tool_choice auto)",
            param=reasoning.param,
            code="unsupported_parameter",
        )
    return _budget(reasoning, request.max_tokens)


def _budget(reasoning: Reasoning, max_tokens: int) -> int | None:
    if reasoning.budget_tokens is not None:
        if not MIN_BUDGET <= reasoning.budget_tokens < max_tokens:
            raise BadRequestException(
                f"{reasoning.param}.budget_tokens must be at least {MIN_BUDGET} and below "
                f"max_tokens ({max_tokens})",
                param=f"{reasoning.param}.budget_tokens",
            )
        return reasoning.budget_tokens
    budget = min(BUDGETS.get(reasoning.effort or "medium", BUDGETS["medium"]), max_tokens // 2)
    if budget >= MIN_BUDGET:
        return budget
    if reasoning.adaptive:
        return None
    raise BadRequestException(
        f"max_tokens ({max_tokens}) leaves no room to think: at least {2 * MIN_BUDGET}",
        param="max_tokens",
    )


def request_fields(budget: int) -> dict[str, object]:
    """Converse's `additionalModelRequestFields` for Claude's thinking."""
    return {"thinking": {"type": "enabled", "budget_tokens": budget}}
