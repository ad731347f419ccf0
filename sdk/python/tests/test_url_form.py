"""Where the URL form sends a request: pure URL rewriting, no server needed."""

from __future__ import annotations

import httpx

from fairlane._url_form import _to_fairlane


def test_another_host_goes_to_fairlane_under_its_path_prefix() -> None:
    request = httpx.Request("GET", "https://api.example.com/v1/x?q=1")
    _to_fairlane(request, httpx.URL("http://127.0.0.1:8080/fairlane/"))
    # A fixed path: the URL's own could be /t/<target>/..., which names a target.
    assert str(request.url) == "http://127.0.0.1:8080/fairlane/"
    assert request.headers["x-fairlane-url"] == "https://api.example.com/v1/x?q=1"
    assert request.headers["host"] == "127.0.0.1:8080"


def test_a_request_for_fairlane_itself_is_left_alone() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:8080/t/echo/x")
    _to_fairlane(request, httpx.URL("http://127.0.0.1:8080"))
    assert str(request.url) == "http://127.0.0.1:8080/t/echo/x"
    assert "x-fairlane-url" not in request.headers
