"""Fairlane's refusals (problem+json, docs/errors.md) as exception classes."""

from __future__ import annotations

import json
import math
import time
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

import httpx

PROBLEM_TYPE = "https://fairlane.dev/errors/"


class FairlaneError(Exception):
    """An error answer from Fairlane, or a non-2xx answer of the jobs API.

    ``code`` and ``problem`` are set only when Fairlane itself refused (a problem+json body
    of its own); an upstream's answer passed through has neither. Match on the subclass or
    on ``code``.
    """

    def __init__(
        self, status: int, problem: Mapping[str, Any] | None, retry_after: int | None
    ) -> None:
        self.status = status
        self.problem = problem
        self.code: str | None = problem.get("code") if problem else None
        self.title: str | None = problem.get("title") if problem else None
        self.stage: str | None = problem.get("stage") if problem else None
        self.request_id: str | None = problem.get("requestId") if problem else None
        self.detail: str | None = problem.get("detail") if problem else None
        #: Seconds from the Retry-After header, when there was one.
        self.retry_after = retry_after
        if problem:
            message = f"{status} {self.code}: {self.detail or self.title}"
        else:
            message = f"HTTP {status}"
        super().__init__(message)

    @property
    def retryable(self) -> bool:
        """Fairlane refused before anything reached the upstream and said when to come back
        (429 or 503 with Retry-After): any method may be sent again after the wait."""
        return (
            self.problem is not None
            and self.status in (429, 503)
            and self.retry_after is not None
        )


class AuthenticationError(FairlaneError):
    """401: no Fairlane key, an unknown or revoked one, or a caller credential refused."""


class PermissionDeniedError(FairlaneError):
    """403: a target the workspace may not use, or a destination the policy blocks."""


class NotFoundError(FairlaneError):
    """404."""


class ConflictError(FairlaneError):
    """409, 422 idempotency_conflict: the job is not in a state for this, or the key is taken."""


class BadRequestError(FairlaneError):
    """The request itself was wrong (400, 405, 408, 413, 422, 431): do not resend it."""


class RateLimitError(FairlaneError):
    """429 rate_limited or queue_full: come back after ``retry_after`` seconds."""


class UnavailableError(FairlaneError):
    """503 queue_timeout, cluster_unavailable, store_unavailable: come back later."""


class UpstreamError(FairlaneError):
    """502 upstream_unavailable, 504 upstream_timeout: Fairlane already retried."""


_BY_CODE: dict[str, type[FairlaneError]] = {
    "unauthenticated": AuthenticationError,
    "caller_unauthenticated": AuthenticationError,
    "forbidden_target": PermissionDeniedError,
    "destination_blocked": PermissionDeniedError,
    "admin_disabled": PermissionDeniedError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "bad_request": BadRequestError,
    "method_not_allowed": BadRequestError,
    "request_timeout": BadRequestError,
    "payload_too_large": BadRequestError,
    "headers_too_large": BadRequestError,
    "rate_limited": RateLimitError,
    "queue_full": RateLimitError,
    "queue_timeout": UnavailableError,
    "cluster_unavailable": UnavailableError,
    "store_unavailable": UnavailableError,
    "upstream_unavailable": UpstreamError,
    "upstream_timeout": UpstreamError,
    "internal": FairlaneError,
    "job_not_found": NotFoundError,
    "job_finished": ConflictError,
    "job_not_finished": ConflictError,
    "idempotency_conflict": ConflictError,
    "tier_not_allowed": PermissionDeniedError,
    "jobs_unavailable": UnavailableError,
}

# A code this client does not know (a newer server) is classed by its status.
_BY_STATUS: dict[int, type[FairlaneError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: BadRequestError,
    408: BadRequestError,
    409: ConflictError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
    431: BadRequestError,
    502: UpstreamError,
    503: UnavailableError,
    504: UpstreamError,
}


def retry_after_seconds(value: str | None, now: float | None = None) -> int | None:
    """Seconds to wait from a Retry-After value: delta-seconds, or an HTTP date counted
    from ``now`` (unix seconds). None when absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        at = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0, math.ceil(at - current))


def _problem(content_type: str | None, body: bytes) -> dict[str, Any] | None:
    if not content_type or not content_type.lower().startswith("application/problem+json"):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if (
        isinstance(value, dict)
        and isinstance(value.get("type"), str)
        and value["type"].startswith(PROBLEM_TYPE)
        and isinstance(value.get("code"), str)
        and isinstance(value.get("status"), int)
    ):
        return value
    return None


def error_from(
    status: int, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> FairlaneError:
    """The error of an answer already read: its status, headers and body."""
    lower = {name.lower(): value for name, value in headers.items()}
    problem = _problem(lower.get("content-type"), body)
    cls = (_BY_CODE.get(problem["code"]) if problem else None) or _BY_STATUS.get(
        status, FairlaneError
    )
    return cls(status, problem, retry_after_seconds(lower.get("retry-after"), now))


def problem_error(response: httpx.Response) -> FairlaneError | None:
    """Fairlane's refusal in a response of the proxy forms, or None when the response is
    the upstream's (whatever its status). The response must have been read."""
    if response.is_success:
        return None
    error = error_from(response.status_code, response.headers, response.content)
    return error if error.problem is not None else None


def raise_for_problem(response: httpx.Response) -> None:
    """Raises Fairlane's refusal in a proxied response; an upstream's answer passes."""
    error = problem_error(response)
    if error is not None:
        raise error
