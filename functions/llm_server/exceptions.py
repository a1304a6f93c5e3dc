"""The exceptions LLM Server raises, each carrying its HTTP status and a stable error type and code.

`api/errors.py` turns any of them into the JSON error body; nothing else needs to know the mapping.
Messages are written for the caller: they name the field or the cause and never contain a key.
"""

from __future__ import annotations


class LLMServerException(Exception):
    """Base class: an error with an HTTP status, an OpenAI-style `type` and a stable `code`."""

    status_code = 500
    error_type = "server_error"
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.param = param
        self.retry_after = retry_after
        if status_code is not None:
            self.status_code = status_code


class ValidationException(LLMServerException):
    """A field has a bad value (422), or the request is malformed (400)."""

    status_code = 422
    error_type = "invalid_request_error"
    code = "invalid_value"


class BadRequestException(ValidationException):
    """The request cannot be used as sent: malformed JSON or event, too long for the model (400)."""

    status_code = 400
    code = "bad_request"


class PayloadTooLargeException(ValidationException):
    """The body is over MAX_BODY_BYTES (413)."""

    status_code = 413
    code = "request_too_large"


class RequestTimeoutException(ValidationException):
    """The body did not arrive in time (408): its connection is closed after the answer."""

    status_code = 408
    code = "request_timeout"


class UnsupportedMediaTypeException(ValidationException):
    """The body is not JSON (415)."""

    status_code = 415
    code = "unsupported_media_type"


class NotFoundException(LLMServerException):
    """What the request names does not exist, or is not the caller's (404)."""

    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class AuthenticationException(LLMServerException):
    """A key is missing, malformed or rejected (401)."""

    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionException(LLMServerException):
    """The key is valid but not allowed to do this (403)."""

    status_code = 403
    error_type = "permission_error"
    code = "permission_denied"


class ConflictException(LLMServerException):
    """The same request is already being handled (409)."""

    status_code = 409
    error_type = "conflict_error"
    code = "request_in_progress"


class RateLimitException(LLMServerException):
    """Too many requests, here or upstream; `retry_after` says when to come back (429)."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limited"


class StoreUnavailableException(LLMServerException):
    """A store the request needs could not answer, even after retries (503, with Retry-After)."""

    status_code = 503
    error_type = "server_error"
    code = "store_unavailable"


class GuardrailUnavailableException(LLMServerException):
    """The guardrail could not check a turn, even after retries: it fails closed (503)."""

    status_code = 503
    error_type = "server_error"
    code = "guardrail_unavailable"


class ConfigurationException(LLMServerException):
    """The server is misconfigured: a setting, a secret or the local model (500)."""

    status_code = 500
    error_type = "server_error"
    code = "configuration_error"


class ChatServiceException(LLMServerException):
    """The chat service failed for a reason that is not the caller's (500)."""

    status_code = 500
    error_type = "server_error"
    code = "chat_service_error"


class OpenAIClientException(LLMServerException):
    """The upstream model provider failed or could not be reached (502)."""

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"


class GenerationTimeoutException(LLMServerException):
    """The local model did not finish within its budget (504): the worker is free again."""

    status_code = 504
    error_type = "server_error"
    code = "generation_timeout"


class UpstreamTimeoutException(OpenAIClientException):
    """The upstream did not answer within the time budget (504)."""

    status_code = 504
    code = "upstream_timeout"
