"""Client for Fairlane: the jobs API, webhook verification, and httpx through Fairlane."""

from ._client import AsyncClient, Client, WaitTimeoutError
from ._errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FairlaneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnavailableError,
    UpstreamError,
    error_from,
    problem_error,
    raise_for_problem,
)
from ._retry import AsyncRetryTransport, RetryTransport
from ._webhooks import WebhookRefusal, WebhookVerificationError, verify_webhook

__all__ = [
    "AsyncClient",
    "AsyncRetryTransport",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "FairlaneError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryTransport",
    "UnavailableError",
    "UpstreamError",
    "WaitTimeoutError",
    "WebhookRefusal",
    "WebhookVerificationError",
    "error_from",
    "problem_error",
    "raise_for_problem",
    "verify_webhook",
]
