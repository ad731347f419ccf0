"""The shared test vectors of spec/test-vectors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import fairlane

from .conftest import vectors

SIGNATURES = vectors("webhook-signatures.json")
PROBLEMS = vectors("problems.json")

KINDS: dict[str, type[fairlane.FairlaneError]] = {
    "authentication": fairlane.AuthenticationError,
    "permission_denied": fairlane.PermissionDeniedError,
    "not_found": fairlane.NotFoundError,
    "conflict": fairlane.ConflictError,
    "bad_request": fairlane.BadRequestError,
    "rate_limit": fairlane.RateLimitError,
    "unavailable": fairlane.UnavailableError,
    "upstream": fairlane.UpstreamError,
    "other": fairlane.FairlaneError,
}


@pytest.mark.parametrize("case", SIGNATURES["cases"], ids=lambda c: c["name"])
def test_verify_webhook(case: dict[str, Any]) -> None:
    def verify() -> Any:
        return fairlane.verify_webhook(
            case["headers"],
            case["body"].encode(),
            case["secrets"],
            tolerance=SIGNATURES["toleranceSeconds"],
            now=case["now"],
        )

    if case["valid"]:
        assert verify() is not None
    else:
        with pytest.raises(fairlane.WebhookVerificationError) as refused:
            verify()
        assert refused.value.reason == case["reason"]


def test_verify_webhook_takes_httpx_headers_a_str_body_and_one_secret() -> None:
    case = next(c for c in SIGNATURES["cases"] if c["name"] == "valid")
    payload = fairlane.verify_webhook(
        httpx.Headers(case["headers"]), case["body"], case["secrets"][0], now=case["now"]
    )
    assert payload["state"] == "succeeded"


@pytest.mark.parametrize("case", PROBLEMS["cases"], ids=lambda c: c["name"])
def test_error_from(case: dict[str, Any]) -> None:
    want = case["expect"]
    error = fairlane.error_from(
        case["status"], case["headers"], case["body"].encode(), now=PROBLEMS["now"]
    )
    assert type(error) is KINDS[want["kind"]]
    assert error.status == case["status"]
    assert (error.problem is not None) == want["problem"]
    assert error.code == want["code"]
    assert error.title == want["title"]
    assert error.stage == want["stage"]
    assert error.request_id == want["requestId"]
    assert error.detail == want["detail"]
    assert error.retry_after == want["retryAfterSeconds"]
    assert error.retryable == want["retryable"]
