"""Bedrock's errors translated into ours, each saying whose fault it is.

The caller's: a request Bedrock refused (`ValidationException`: 400 naming what it refused).
The operator's: no access to the model, a model not enabled or not available on demand,
missing credentials (502, logged loudly: never blamed on the caller). Passing: throttling,
an overloaded or failing model, a timeout, a dropped connection (retried within the request's
time budget, then 429, 503, 504 or 502).
"""

from __future__ import annotations

from llm_server.core.text import bounded
from llm_server.exceptions import (
    BadRequestException,
    LLMServerException,
    OpenAIClientException,
    RateLimitException,
    UpstreamTimeoutException,
)
from llm_server.providers.retry import Retryable
from llm_server.utils.log import logger

MAX_REASON = 500
THROTTLED = frozenset({"ThrottlingException", "ModelNotReadyException"})
UNAVAILABLE = frozenset(
    {
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelErrorException",
        "ModelStreamErrorException",
    }
)
OPERATOR = frozenset(
    {
        "AccessDeniedException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
    }
)
# ValidationExceptions that are about the deployment, not the request
_OPERATOR_WORDING = ("model identifier is invalid", "on-demand throughput")
THROTTLE_RETRY_AFTER = 2.0


def classify(exc: Exception, model: str) -> Exception:
    """A botocore failure as `Retryable` (worth another try) or a final `LLMServerException`."""
    from botocore import exceptions as boto

    if isinstance(exc, Retryable | LLMServerException):  # ours already (a timeout here)
        return exc
    if isinstance(exc, boto.ClientError):
        return _client_error(exc, model)
    if isinstance(exc, boto.ReadTimeoutError | boto.ConnectTimeoutError):
        return Retryable(UpstreamTimeoutException("Bedrock did not answer in time"), None)
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return operator_fault("no AWS credentials to call Bedrock with", "bedrock_credentials")
    if isinstance(exc, boto.BotoCoreError):  # a connection refused, reset or closed
        error = OpenAIClientException("Could not reach Bedrock", code="upstream_unreachable")
        return Retryable(error, None)
    raise exc


def _client_error(exc: Exception, model: str) -> Exception:
    details = getattr(exc, "response", {}).get("Error", {})
    code = str(details.get("Code") or "")
    code = code[:1].upper() + code[1:]  # a stream's error events are spelled throttlingException
    reason = bounded(str(details.get("Message") or code), MAX_REASON)
    error: LLMServerException
    if code in THROTTLED:
        error = RateLimitException(
            f"Bedrock is throttling requests to {model}: {reason}",
            code="upstream_rate_limited",
            retry_after=THROTTLE_RETRY_AFTER,
        )
        return Retryable(error, None)
    if code == "ServiceQuotaExceededException":
        return RateLimitException(
            f"This server's Bedrock quota for {model} is spent: {reason}",
            code="upstream_quota_exceeded",
            retry_after=60.0,
        )
    if code == "ModelTimeoutException":
        return Retryable(UpstreamTimeoutException(f"{model} did not answer in time"), None)
    if code in UNAVAILABLE:
        error = OpenAIClientException(
            f"Bedrock could not run {model}: {reason}",
            code="upstream_unavailable",
            status_code=503,
        )
        return Retryable(error, None)
    if code in OPERATOR or (
        code == "ValidationException" and any(w in reason for w in _OPERATOR_WORDING)
    ):
        return operator_fault(f"{code}: {reason}", "bedrock_model_unavailable", model)
    if code == "ValidationException":
        return BadRequestException(
            f"Bedrock refused the request: {reason}", code="upstream_validation_error"
        )
    return OpenAIClientException(f"Bedrock failed ({code or 'no code'}): {reason}")


def operator_fault(reason: str, code: str, model: str = "") -> LLMServerException:
    """A failure only the operator can fix: logged as an error, answered 502."""
    logger.error(
        "Bedrock refused this server: the operator has to fix it",
        extra={"error_code": code, "reason": reason, "model": model},
    )
    return OpenAIClientException(
        f"This server cannot use {model or 'Bedrock'} (the operator has to fix its access: "
        "IAM, model access or region)",
        code=code,
    )
