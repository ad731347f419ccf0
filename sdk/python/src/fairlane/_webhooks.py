"""Webhook verification per Standard Webhooks (https://www.standardwebhooks.com)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Literal, Mapping, Sequence

SECRET_PREFIX = "whsec_"

WebhookRefusal = Literal[
    "missing_headers",
    "invalid_timestamp",
    "timestamp_too_old",
    "timestamp_too_new",
    "no_matching_signature",
]


class WebhookVerificationError(Exception):
    """A webhook that must not be trusted; ``reason`` says why (the same reasons in every
    Fairlane client)."""

    def __init__(self, reason: WebhookRefusal, message: str) -> None:
        super().__init__(message)
        self.reason: WebhookRefusal = reason


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _signatures(header: str) -> list[bytes]:
    found = []
    for part in header.split(" "):
        version, _, signature = part.partition(",")
        if version != "v1" or not signature:
            continue
        try:
            found.append(base64.b64decode(signature, validate=True))
        except binascii.Error:
            continue  # matches nothing; the others may still match
    return found


def _key(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(encoded)


def verify_webhook(
    headers: Mapping[str, str],
    raw_body: bytes | str,
    secrets: str | Sequence[str],
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> Any:
    """Checks a webhook from Fairlane against the workspace's secrets, any of which may have
    signed it (rotation), and returns the parsed body (the job's result document).

    ``raw_body`` must be the bytes as received: JSON parsed and serialised again does not
    verify. ``now`` is the clock in unix seconds. Raises WebhookVerificationError.
    """
    webhook_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    if not webhook_id or not timestamp or not signature:
        raise WebhookVerificationError(
            "missing_headers",
            "webhook-id, webhook-timestamp and webhook-signature are all required",
        )
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookVerificationError(
            "invalid_timestamp", "webhook-timestamp is not unix seconds"
        )
    age = int(time.time() if now is None else now) - int(timestamp)
    if age > tolerance:
        raise WebhookVerificationError("timestamp_too_old", f"webhook is {age} s old")
    if -age > tolerance:
        raise WebhookVerificationError(
            "timestamp_too_new", f"webhook is {-age} s in the future"
        )
    body = raw_body.encode() if isinstance(raw_body, str) else raw_body
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    candidates = _signatures(signature)
    for secret in [secrets] if isinstance(secrets, str) else secrets:
        expected = hmac.new(_key(secret), signed, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return json.loads(body)
    raise WebhookVerificationError(
        "no_matching_signature", "no webhook-signature matches any of the secrets"
    )
