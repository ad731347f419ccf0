"""The /t/<target> form and Fairlane's refusals, against a real Fairlane."""

from __future__ import annotations

import asyncio
import json

import pytest

import fairlane

from .conftest import Upstream

# Keys of spec/test-vectors/fairlane.yaml.
DEMO_KEY = "fl_demo_quickstart"
INSTANT_KEY = "fl_sdk_instant"


def test_proxy_client_reaches_the_target_without_the_key(
    fairlane_url: str, upstream: Upstream
) -> None:
    with fairlane.Client(fairlane_url, DEMO_KEY) as client:
        assert client.target_url("echo") == f"{fairlane_url}/t/echo"
        with client.proxy_client("echo") as echo:
            response = echo.post(
                "/orders?id=7", json={"n": 1}, headers={"authorization": "Bearer upstream-own"}
            )
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    seen = upstream.requests[-1]
    assert (seen.method, seen.path) == ("POST", "/orders?id=7")
    assert json.loads(seen.body) == {"n": 1}
    assert DEMO_KEY not in json.dumps(seen.headers)


def test_async_proxy_client(fairlane_url: str, upstream: Upstream) -> None:
    async def run() -> int:
        async with fairlane.AsyncClient(fairlane_url, DEMO_KEY) as client:
            async with client.proxy_client("echo") as echo:
                return (await echo.get("/async")).status_code

    assert asyncio.run(run()) == 200
    assert upstream.requests[-1].path == "/async"


def test_unknown_key_is_an_authentication_error(fairlane_url: str, upstream: Upstream) -> None:
    with fairlane.Client(fairlane_url, "fl_nobody") as client, client.proxy_client("echo") as echo:
        response = echo.get("/x")
    with pytest.raises(fairlane.AuthenticationError) as refused:
        fairlane.raise_for_problem(response)
    assert refused.value.status == 401
    assert refused.value.code == "unauthenticated"
    assert refused.value.stage == "authenticate"
    assert refused.value.request_id == response.headers["x-request-id"]
    assert upstream.requests == []


def test_target_not_allowed_is_permission_denied(fairlane_url: str) -> None:
    with fairlane.Client(fairlane_url, DEMO_KEY) as client, client.proxy_client("billing") as other:
        error = fairlane.problem_error(other.get("/x"))
    assert isinstance(error, fairlane.PermissionDeniedError)
    assert error.code == "forbidden_target"


def test_url_form_for_another_host(fairlane_url: str) -> None:
    with fairlane.Client(fairlane_url, DEMO_KEY) as client, client.proxy_client() as any_host:
        response = any_host.get("https://api.example.com/v1/models?page=2")
    error = fairlane.problem_error(response)
    # Workspace demo approves no host: Fairlane read the URL form and refused it.
    assert isinstance(error, fairlane.PermissionDeniedError)
    assert error.code == "destination_blocked"


def test_url_form_whose_path_names_a_target_goes_to_its_host(
    fairlane_url: str, upstream: Upstream
) -> None:
    with fairlane.Client(fairlane_url, DEMO_KEY) as client, client.proxy_client() as any_host:
        response = any_host.get("https://api.example.com/t/echo/x")
    error = fairlane.problem_error(response)
    # Fairlane read the URL form (and refused the host), not the target form of target echo.
    assert isinstance(error, fairlane.PermissionDeniedError)
    assert error.code == "destination_blocked"
    assert upstream.requests == []


def test_rate_limited_with_retry_after_and_retries_that_wait_it_out(
    fairlane_url: str, upstream: Upstream
) -> None:
    # 1 request per second, never queued: one of a few quick requests is refused, however
    # slow the machine.
    with fairlane.Client(fairlane_url, INSTANT_KEY) as client, client.proxy_client("echo") as echo:
        error = None
        for _ in range(5):
            error = error or fairlane.problem_error(echo.get("/a"))
    assert isinstance(error, fairlane.RateLimitError)
    assert error.code == "rate_limited"
    assert error.retryable
    assert error.retry_after is not None and error.retry_after >= 1

    with fairlane.Client(fairlane_url, INSTANT_KEY, retries=3) as client:
        with client.proxy_client("echo") as echo:
            response = echo.post("/c", content=b'{"again": true}')
    assert response.status_code == 200
    sent = [r for r in upstream.requests if r.path == "/c"]
    assert [r.body for r in sent] == [b'{"again": true}']


def test_async_retries_wait_out_retry_after(fairlane_url: str, upstream: Upstream) -> None:
    async def run() -> list[int]:
        async with fairlane.AsyncClient(fairlane_url, INSTANT_KEY, retries=3) as client:
            async with client.proxy_client("echo") as echo:
                return [(await echo.get(f"/async-{i}")).status_code for i in range(2)]

    assert asyncio.run(run()) == [200, 200]
    assert [r.path for r in upstream.requests] == ["/async-0", "/async-1"]


def test_retries_leave_a_refusal_whose_wait_is_too_long(fairlane_url: str) -> None:
    with fairlane.Client(fairlane_url, INSTANT_KEY, retries=3, max_retry_wait=0) as client:
        with client.proxy_client("echo") as echo:
            statuses = [echo.get("/d").status_code, echo.get("/e").status_code]
    assert 429 in statuses


def test_upstream_429_passes_through_and_is_never_retried(
    fairlane_url: str, upstream: Upstream
) -> None:
    upstream.behave = lambda _: (
        429,
        {"content-type": "text/plain", "retry-after": "1"},
        b"slow down",
    )
    with fairlane.Client(fairlane_url, DEMO_KEY, retries=3) as client:
        with client.proxy_client("echo") as echo:
            response = echo.post("/busy", content=b"x")
    assert response.status_code == 429
    assert fairlane.problem_error(response) is None
    fairlane.raise_for_problem(response)
    assert response.text == "slow down"
    assert len([r for r in upstream.requests if r.path == "/busy"]) == 1
