"""ApplyGuardrail on bedrock-runtime: one check of a turn's input or output texts.

Each text is a content block of its own, so the guardrail's `outputs` line up with them: a
masked text (ANONYMIZE) goes on masked, in its place. A blocking finding ends the turn with
the guardrail's own message. A guardrail that cannot answer (throttled, failing, unreachable,
refusing this server) is retried within the request's time budget, then fails closed: a 503
`guardrail_unavailable`, and nothing goes on unchecked. So do outputs that do not line up with
the texts sent (a mask that cannot be put back where it belongs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_server.exceptions import GuardrailUnavailableException, LLMServerException
from llm_server.guardrails.report import Source, from_apply
from llm_server.providers.bedrock.calls import RuntimeCalls
from llm_server.providers.retry import GaveUp, RetryPolicy
from llm_server.utils.log import logger
from llm_server.utils.metrics import record_upstream_call
from llm_server.values import GuardrailReport

BLOCKED = "Blocked by the guardrail."
"""The message of a block whose guardrail answered none (it always has one on AWS)."""
RETRY_AFTER = 2.0


@dataclass(frozen=True)
class Verdict:
    """A check's outcome.

    The texts as they may go on (masked where the guardrail masked), the guardrail's message
    when it blocked (`blocked`), and its report.
    """

    texts: tuple[str, ...]
    blocked: str | None
    report: GuardrailReport


class BedrockGuardrail:
    """Checks texts with one guardrail version, in `region`.

    `identifier` is its id or ARN, `version` a number or DRAFT; `client` a test's
    bedrock-runtime client.
    """

    def __init__(
        self,
        identifier: str,
        version: str,
        region: str | None = None,
        timeout: float = 10.0,
        max_connections: int = 10,
        retry: RetryPolicy | None = None,
        client: Any = None,
    ) -> None:
        self.identifier, self.version = identifier, version
        self._calls = RuntimeCalls(
            region, timeout, max_connections, retry or RetryPolicy(), client, name="guardrail"
        )

    @property
    def tag(self) -> str:
        """`identifier:version`, as BEDROCK_GUARDRAIL names it (logs, cache keys)."""
        return f"{self.identifier}:{self.version}"

    def prime(self) -> None:
        """Make the client now (Lambda, ahead of traffic)."""
        self._calls.client()

    def renew(self) -> None:
        """Forget the client and its credentials (after a SnapStart restore)."""
        self._calls.renew()

    def shutdown(self) -> None:
        """Let the call threads go (at server shutdown)."""
        self._calls.shutdown()

    async def check(self, source: Source, texts: Sequence[str], deadline: float | None) -> Verdict:
        """Check `texts` as the turn's `source` (input or output); empty ones are not sent."""
        sent = [index for index, text in enumerate(texts) if text]
        if not sent:
            return Verdict(tuple(texts), None, GuardrailReport())
        content = [{"text": {"text": texts[index]}} for index in sent]
        answer = await self._apply(source, content, deadline)
        report = from_apply(answer, source)
        outputs = [str(output.get("text", "")) for output in answer.get("outputs") or ()]
        if answer.get("action") != "GUARDRAIL_INTERVENED":
            return Verdict(tuple(texts), None, report)
        if report.blocked:
            return Verdict(tuple(texts), "\n".join(filter(None, outputs)) or BLOCKED, report)
        if len(outputs) != len(sent):
            logger.error(
                "the guardrail's outputs do not line up with the texts sent: refused",
                extra={"guardrail": self.tag, "sent": len(sent), "outputs": len(outputs)},
            )
            raise self._unavailable("guardrail_outputs_misaligned")
        masked = list(texts)
        for index, output in zip(sent, outputs, strict=True):
            masked[index] = output
        return Verdict(tuple(masked), None, report)

    async def _apply(
        self, source: Source, content: list[dict[str, Any]], deadline: float | None
    ) -> dict[str, Any]:
        client = self._calls.client()
        call = {
            "guardrailIdentifier": self.identifier,
            "guardrailVersion": self.version,
            "source": source.upper(),
            "content": content,
        }
        try:
            answer, attempts, _ = await self._calls.retried(
                lambda: client.apply_guardrail(**call), deadline, f"guardrail {self.tag}"
            )
        except GaveUp as gave_up:
            record_upstream_call(gave_up.attempts - 1, "guardrail_unavailable")
            raise self._unavailable(gave_up.error.code) from None
        record_upstream_call(attempts - 1, None)
        return dict(answer)

    def _unavailable(self, code: str) -> LLMServerException:
        """Fail closed: the turn ends here, and the log says why (never with the text)."""
        logger.warning(
            "the guardrail could not check a turn: refused, nothing sent on unchecked",
            extra={"guardrail": self.tag, "error_code": code},
        )
        return GuardrailUnavailableException(
            "The server's guardrail could not check this request, so it was not run (nothing "
            "is passed on unchecked): try again shortly",
            retry_after=RETRY_AFTER,
        )
