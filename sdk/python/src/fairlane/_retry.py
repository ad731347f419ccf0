"""httpx transports that wait out Fairlane's Retry-After and send the request again."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import httpx

from ._errors import error_from


def _replayable(request: httpx.Request) -> bool:
    # Bytes content is kept in a ByteStream; a generator body was consumed by the first try.
    return isinstance(request.stream, httpx.ByteStream)


def _wait(response: httpx.Response, max_wait: float) -> float | None:
    """Seconds to wait before sending again, or None when the answer is final."""
    error = error_from(response.status_code, response.headers, response.content)
    if not error.retryable or error.retry_after is None or error.retry_after > max_wait:
        return None
    return float(error.retry_after)


class RetryTransport(httpx.BaseTransport):
    """Sends a request that Fairlane refused with 429 or 503 and a Retry-After again after
    that wait (nothing reached the upstream, so any method may), up to ``retries`` times
    and never for a wait longer than ``max_wait`` seconds. Other answers pass untouched."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        retries: int,
        max_wait: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._inner = inner
        self._retries = retries
        self._max_wait = max_wait
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            response = self._inner.handle_request(request)
            if (
                attempt >= self._retries
                or response.status_code not in (429, 503)
                or not _replayable(request)
            ):
                return response
            response.read()
            wait = _wait(response, self._max_wait)
            if wait is None:
                return response
            response.close()
            self._sleep(wait)
            attempt += 1

    def close(self) -> None:
        self._inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """RetryTransport for httpx.AsyncClient."""

    def __init__(self, inner: httpx.AsyncBaseTransport, retries: int, max_wait: float) -> None:
        self._inner = inner
        self._retries = retries
        self._max_wait = max_wait

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            response = await self._inner.handle_async_request(request)
            if (
                attempt >= self._retries
                or response.status_code not in (429, 503)
                or not _replayable(request)
            ):
                return response
            await response.aread()
            wait = _wait(response, self._max_wait)
            if wait is None:
                return response
            await response.aclose()
            await asyncio.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self._inner.aclose()
