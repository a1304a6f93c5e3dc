"""What a guardrail says it did, read into a `GuardrailReport`: policies and units, never text.

A Bedrock `GuardrailAssessment` lists, per policy, what it found and its action (`BLOCKED`,
`ANONYMIZED`, or `NONE` for a finding it only reports); its `match` fields hold the caller's
text and are never read here. A finding is named by its policy and, where the operator named
it, its entity type, regex or topic (`pii:EMAIL`, `regex:employee-id`, `topic:investing`):
what the operator configured, safe to log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from llm_server.values import GuardrailReport

Source = Literal["input", "output"]
_POLICIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    # assessment key: (list key, label, the key naming the entry)
    "wordPolicy": (("customWords", "words", ""), ("managedWordLists", "managed_words", "type")),
    "sensitiveInformationPolicy": (("piiEntities", "pii", "type"), ("regexes", "regex", "name")),
    "topicPolicy": (("topics", "topic", "name"),),
    "contentPolicy": (("filters", "content", "type"),),
    "contextualGroundingPolicy": (("filters", "grounding", "type"),),
}
UNIT_NAMES = (
    "topicPolicyUnits",
    "contentPolicyUnits",
    "wordPolicyUnits",
    "sensitiveInformationPolicyUnits",
    "sensitiveInformationPolicyFreeUnits",
    "contextualGroundingPolicyUnits",
    "contentPolicyImageUnits",
    "automatedReasoningPolicyUnits",
)
"""Bedrock's `GuardrailUsage` counters: text units (images for `contentPolicyImageUnits`)."""


def findings(
    assessments: Iterable[Mapping[str, Any]], source: Source
) -> tuple[tuple[str, ...], bool]:
    """`(labels, blocked)`: what intervened (`input:pii:EMAIL`...), and whether anything blocked.

    Findings whose action is NONE (reported, not acted on) are left out.
    """
    labels: list[str] = []
    blocked = False
    for assessment in assessments:
        for policy, lists in _POLICIES.items():
            found = assessment.get(policy) or {}
            for key, label, named_by in lists:
                for entry in found.get(key) or ():
                    action = entry.get("action", "BLOCKED")
                    if action in ("NONE", None):
                        continue
                    blocked = blocked or action == "BLOCKED"
                    name = str(entry.get(named_by, ""))[:64] if named_by else ""
                    labels.append(":".join(filter(None, (source, label, name))))
    return tuple(dict.fromkeys(labels)), blocked


def units(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """The units of a `GuardrailUsage`, those above 0."""
    counted = {name: int((usage or {}).get(name) or 0) for name in UNIT_NAMES}
    return {name: count for name, count in counted.items() if count > 0}


def from_apply(answer: Mapping[str, Any], source: Source) -> GuardrailReport:
    """An ApplyGuardrail answer's report (`blocked` names `source` when it blocked)."""
    labels, blocked = findings(answer.get("assessments") or (), source)
    intervened = answer.get("action") == "GUARDRAIL_INTERVENED"
    where: Literal["", "input", "output"] = source if intervened and blocked else ""
    return GuardrailReport(labels, where, tuple(units(answer.get("usage")).items()))


def from_trace(trace: Mapping[str, Any] | None, stop_reason: str) -> GuardrailReport | None:
    """A Converse trace's guardrail report (None when it has none and nothing intervened).

    `inputAssessment` maps the guardrail to one assessment, `outputAssessments` to a list;
    each may carry `invocationMetrics.usage`. A turn Converse stopped (`guardrail_intervened`)
    was blocked on its input if its input assessment blocked, else on its output.
    """
    guardrail = (trace or {}).get("guardrail") or {}
    inputs = list((guardrail.get("inputAssessment") or {}).values())
    outputs = [a for lists in (guardrail.get("outputAssessments") or {}).values() for a in lists]
    in_labels, in_blocked = findings(inputs, "input")
    out_labels, _ = findings(outputs, "output")
    counted: dict[str, int] = {}
    for assessment in inputs + outputs:
        for name, count in units((assessment.get("invocationMetrics") or {}).get("usage")).items():
            counted[name] = counted.get(name, 0) + count
    blocked: Literal["", "input", "output"] = ""
    if stop_reason == "guardrail_intervened":
        blocked = "input" if in_blocked else "output"
    if not (in_labels or out_labels or counted or blocked):
        return None
    return GuardrailReport(in_labels + out_labels, blocked, tuple(counted.items()))
