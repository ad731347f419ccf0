"""Fairlane's jobs API and its /t/<target> proxy form, sync (Client) and async (AsyncClient)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping
from urllib.parse import quote

import httpx

from ._errors import error_from
from ._retry import AsyncRetryTransport, RetryTransport
from ._url_form import AsyncUrlFormTransport, UrlFormTransport

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


class WaitTimeoutError(TimeoutError):
    """wait_for_job ran out of time; ``job`` is the last state read."""

    def __init__(self, job: dict[str, Any], timeout: float) -> None:
        super().__init__(f"job {job.get('id')} still {job.get('state')} after {timeout} s")
        self.job = job


def _job_body(
    request: Mapping[str, Any], webhook: Any, options: Mapping[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {"request": dict(request), **options}
    if webhook is not None:
        body["webhook"] = webhook
    return body


def _list_params(
    state: str | None, cursor: str | None, limit: int | None
) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if state is not None:
        params["state"] = state
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None:
        params["limit"] = limit
    return params


def _result(response: httpx.Response) -> Any:
    if not response.is_success:
        raise error_from(response.status_code, response.headers, response.content)
    return response.json() if response.content else None


class Client:
    """Fairlane's jobs API and proxy form with one key and one base URL (the proxy port).

    ``retries``: how many times a request Fairlane refused with 429 or 503 and a Retry-After
    is sent again after the wait, never for a wait over ``max_retry_wait`` seconds.
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        retries: int = 0,
        max_retry_wait: float = 60.0,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._retries = retries
        self._max_retry_wait = max_retry_wait
        self._timeout = timeout
        self._transport = transport
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {key}", "accept": "application/json"},
            timeout=timeout,
            transport=self._retrying(),
        )

    def _retrying(self) -> RetryTransport:
        inner = self._transport or httpx.HTTPTransport()
        return RetryTransport(inner, self._retries, self._max_retry_wait)

    def target_url(self, target: str) -> str:
        """The base URL to give an SDK for a target, e.g. ``http://host:8080/t/openai``."""
        return f"{self.base_url}/t/{quote(target, safe='')}"

    def proxy_client(self, target: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx.Client through Fairlane, with the key (``X-Fairlane-Key``, so your own
        Authorization header is left to the target) and the client's retries. Relative URLs
        go to ``target`` (``/t/<target>/…``); an absolute URL of another host goes in the
        URL form (``X-Fairlane-Url``, held to the workspace's approved hosts). ``kwargs`` go
        to httpx.Client. Close it when done."""
        headers = httpx.Headers(kwargs.pop("headers", None))
        headers["x-fairlane-key"] = self._key
        kwargs.setdefault("timeout", self._timeout)
        return httpx.Client(
            base_url=self.target_url(target) if target else self.base_url,
            headers=headers,
            transport=UrlFormTransport(self._retrying(), httpx.URL(self.base_url)),
            **kwargs,
        )

    def queue_request(
        self,
        request: Mapping[str, Any],
        webhook: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Queues ``request`` (the jobs API's JSON shape) with POST /v1/jobs; ``options`` are
        the other fields of the job body (tier, deadlineMs, retry, race, onSuccess...).
        Returns the accepted job: at least its ``id``."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        response = self._http.post(
            "/v1/jobs", json=_job_body(request, webhook, options), headers=headers
        )
        result: dict[str, Any] = _result(response)
        return result

    def get_job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _result(self._http.get(f"/v1/jobs/{quote(job_id, safe='')}"))
        return result

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancels a job not yet finished (DELETE /v1/jobs/{id}) and returns it, cancelled."""
        result: dict[str, Any] = _result(self._http.delete(f"/v1/jobs/{quote(job_id, safe='')}"))
        return result

    def redeliver_job(self, job_id: str) -> dict[str, Any]:
        """Sends a finished job's undelivered webhooks again, now (POST .../redeliver)."""
        response = self._http.post(f"/v1/jobs/{quote(job_id, safe='')}/redeliver")
        result: dict[str, Any] = _result(response)
        return result

    def list_jobs(
        self, *, state: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """One page of the workspace's jobs: ``{"jobs": [...], "cursor": ...}``; pass the
        cursor back for the next page (absent on the last)."""
        params = _list_params(state, cursor, limit)
        result: dict[str, Any] = _result(self._http.get("/v1/jobs", params=params))
        return result

    def wait_for_job(
        self, job_id: str, timeout: float = 60.0, poll_interval: float = 0.5
    ) -> dict[str, Any]:
        """Reads the job until it is succeeded, failed or cancelled, and returns it."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.get("state") in FINAL_STATES:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeoutError(job, timeout)
            time.sleep(min(poll_interval, left))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClient:
    """Client for asyncio: the same methods, awaited."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        retries: int = 0,
        max_retry_wait: float = 60.0,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._retries = retries
        self._max_retry_wait = max_retry_wait
        self._timeout = timeout
        self._transport = transport
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {key}", "accept": "application/json"},
            timeout=timeout,
            transport=self._retrying(),
        )

    def _retrying(self) -> AsyncRetryTransport:
        inner = self._transport or httpx.AsyncHTTPTransport()
        return AsyncRetryTransport(inner, self._retries, self._max_retry_wait)

    def target_url(self, target: str) -> str:
        """The base URL to give an SDK for a target, e.g. ``http://host:8080/t/openai``."""
        return f"{self.base_url}/t/{quote(target, safe='')}"

    def proxy_client(self, target: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx.AsyncClient through Fairlane (see Client.proxy_client)."""
        headers = httpx.Headers(kwargs.pop("headers", None))
        headers["x-fairlane-key"] = self._key
        kwargs.setdefault("timeout", self._timeout)
        return httpx.AsyncClient(
            base_url=self.target_url(target) if target else self.base_url,
            headers=headers,
            transport=AsyncUrlFormTransport(self._retrying(), httpx.URL(self.base_url)),
            **kwargs,
        )

    async def queue_request(
        self,
        request: Mapping[str, Any],
        webhook: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        response = await self._http.post(
            "/v1/jobs", json=_job_body(request, webhook, options), headers=headers
        )
        result: dict[str, Any] = _result(response)
        return result

    async def get_job(self, job_id: str) -> dict[str, Any]:
        response = await self._http.get(f"/v1/jobs/{quote(job_id, safe='')}")
        result: dict[str, Any] = _result(response)
        return result

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        response = await self._http.delete(f"/v1/jobs/{quote(job_id, safe='')}")
        result: dict[str, Any] = _result(response)
        return result

    async def redeliver_job(self, job_id: str) -> dict[str, Any]:
        response = await self._http.post(f"/v1/jobs/{quote(job_id, safe='')}/redeliver")
        result: dict[str, Any] = _result(response)
        return result

    async def list_jobs(
        self, *, state: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        params = _list_params(state, cursor, limit)
        result: dict[str, Any] = _result(await self._http.get("/v1/jobs", params=params))
        return result

    async def wait_for_job(
        self, job_id: str, timeout: float = 60.0, poll_interval: float = 0.5
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.get_job(job_id)
            if job.get("state") in FINAL_STATES:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeoutError(job, timeout)
            await asyncio.sleep(min(poll_interval, left))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
