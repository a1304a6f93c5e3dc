"""Amazon Bedrock Guardrails on the emulator: made with boto3's own `bedrock` client.

ministack (1.5.33) evaluates word filters, regexes and the PII entities a pattern can find
(EMAIL, US_SOCIAL_SECURITY_NUMBER...), with BLOCK and ANONYMIZE, on the newest user message
(Converse) or the texts sent (ApplyGuardrail), and on the reply.
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3

BLOCKED_INPUT = "요청이 정책에 의해 차단되었습니다. (blocked input)"
BLOCKED_OUTPUT = "응답이 정책에 의해 차단되었습니다. (blocked output)"
WORDS = ["kangaroo", "캥거루"]
"""Blocked wherever they are said."""
OUTPUT_ONLY = "platypus"
"""Blocked in a reply only: a caller may say it, so an echoing model says it back."""


def policy(masked_output: str = "") -> dict[str, Any]:
    """The suite's guardrail: words blocked; e-mail addresses masked and SSNs blocked, both
    ways; `platypus` blocked in replies; `masked_output` (a regex) masked in replies."""
    regexes = [
        {
            "name": "platypus",
            "pattern": OUTPUT_ONLY,
            "action": "BLOCK",
            "inputEnabled": False,
            "outputEnabled": True,
        }
    ]
    if masked_output:
        regexes.append(
            {
                "name": "masked",
                "pattern": masked_output,
                "action": "ANONYMIZE",
                "inputEnabled": False,
                "outputEnabled": True,
            }
        )
    return {
        "wordPolicyConfig": {"wordsConfig": [{"text": word} for word in WORDS]},
        "sensitiveInformationPolicyConfig": {
            "piiEntitiesConfig": [
                {"type": "EMAIL", "action": "ANONYMIZE"},
                {"type": "US_SOCIAL_SECURITY_NUMBER", "action": "BLOCK"},
            ],
            "regexesConfig": regexes,
        },
    }


def create_guardrail(endpoint: str, **policies: Any) -> str:
    """A new guardrail and its version 1 on the emulator at `endpoint`: its `id:version`."""
    bedrock = boto3.client(
        "bedrock",
        endpoint_url=endpoint,
        region_name="ap-northeast-2",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    made = bedrock.create_guardrail(
        name=f"llm-server-{uuid.uuid4().hex[:12]}",
        blockedInputMessaging=BLOCKED_INPUT,
        blockedOutputsMessaging=BLOCKED_OUTPUT,
        **(policies or policy()),
    )
    version = bedrock.create_guardrail_version(guardrailIdentifier=made["guardrailId"])
    return f"{made['guardrailId']}:{version['version']}"
