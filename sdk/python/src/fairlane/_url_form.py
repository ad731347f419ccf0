"""httpx transports that send a request for another host through Fairlane's URL form."""

from __future__ import annotations

import httpx


def _to_fairlane(request: httpx.Request, base: httpx.URL) -> None:
    """A request for a URL outside Fairlane goes to Fairlane with the URL in X-Fairlane-Url
    (held to the workspace's approved hosts); one for Fairlane itself is left as it is.
    It goes to Fairlane's ``/``, not to the URL's own path: a path starting with
    /t/<target> would be routed to that target instead."""
    url = request.url
    if (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port):
        return
    request.headers["x-fairlane-url"] = str(url)
    request.url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + b"/")
    request.headers["host"] = base.netloc.decode("ascii")


class UrlFormTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, base: httpx.URL) -> None:
        self._inner = inner
        self._base = base

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _to_fairlane(request, self._base)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class AsyncUrlFormTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, base: httpx.URL) -> None:
        self._inner = inner
        self._base = base

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _to_fairlane(request, self._base)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
