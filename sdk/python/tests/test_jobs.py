"""The jobs API against a real Fairlane. Written against its contract (issue 15, point 1)
before the server side is on this branch: pyproject.toml leaves this file out until it is."""

from __future__ import annotations

import asyncio
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator

import pytest

import fairlane

from .conftest import Behavior, Seen, Upstream, serve, start_fairlane, stop

# The secrets of workspace demo in spec/test-vectors/fairlane-jobs.yaml: the first signs.
SECRETS = [
    "whsec_BRIfLDlGU2BteoeUoa67yNXi7/wJFiMwPUpXZHF+i5g=",
    "whsec_CRorPE1eb4CRorPE1eb3CBkqO0xdbn+QobLD1OX2Bxg=",
]

Delivery = tuple[str, dict[str, str], bytes]


def slow(path: str, seconds: float) -> Behavior:
    """Echoes, but answers requests to ``path`` only after ``seconds``."""

    def behave(seen: Seen) -> None:
        if seen.path == path:
            time.sleep(seconds)

    return behave


@pytest.fixture(scope="module")
def deliveries() -> Iterator[tuple[str, list[Delivery]]]:
    """A loopback webhook receiver: every delivery as received (path, headers, raw body)."""
    received: list[Delivery] = []

    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            received.append((self.path, dict(self.headers.items()), body))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = serve(lambda: Receiver)
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


@pytest.fixture(scope="module")
def client(
    upstream: Upstream, deliveries: tuple[str, list[Delivery]]
) -> Iterator[fairlane.Client]:
    url, process = start_fairlane(
        {"ECHO_URL": upstream.url, "HOOKS_URL": deliveries[0]}, "fairlane-jobs.yaml"
    )
    with fairlane.Client(url, "fl_demo_quickstart") as client:
        yield client
    stop(process)


def test_queue_wait_and_read_the_upstream_answer(
    client: fairlane.Client, upstream: Upstream
) -> None:
    queued = client.queue_request(
        {"method": "POST", "target": "echo", "path": "/orders", "body": {"sku": "A-1"}},
        tier="free",
        deadlineMs=60_000,
    )
    job = client.wait_for_job(queued["id"], timeout=20, poll_interval=0.1)
    assert (job["id"], job["state"]) == (queued["id"], "succeeded")
    assert len(job["attempts"]) >= 1
    assert job["response"]["status"] == 200
    seen = next(r for r in upstream.requests if r.path == "/orders")
    assert json.loads(seen.body) == {"sku": "A-1"}
    assert seen.headers["idempotency-key"] == queued["id"]


def test_webhook_is_delivered_and_verifies(
    client: fairlane.Client, deliveries: tuple[str, list[Delivery]]
) -> None:
    queued = client.queue_request(
        {"method": "GET", "target": "echo", "path": "/hooked"},
        webhook={"target": "hooks", "path": "/fairlane"},
    )
    deadline = time.monotonic() + 20
    while not any(path == "/fairlane" for path, _, _ in deliveries[1]):
        assert time.monotonic() < deadline, "no webhook delivered"
        time.sleep(0.1)
    _, headers, body = next(d for d in deliveries[1] if d[0] == "/fairlane")
    payload = fairlane.verify_webhook(headers, body, SECRETS)
    assert {k.lower(): v for k, v in headers.items()}["webhook-id"] == queued["id"]
    assert (payload["id"], payload["state"]) == (queued["id"], "succeeded")
    assert fairlane.verify_webhook(headers, body, SECRETS[0])["id"] == queued["id"]


def test_same_idempotency_key_same_job(client: fairlane.Client) -> None:
    request = {"method": "POST", "target": "echo", "path": "/once"}
    first = client.queue_request(request, idempotency_key="py-once-1")
    second = client.queue_request(request, idempotency_key="py-once-1")
    assert second["id"] == first["id"]


def test_cancel_a_job_not_yet_finished(client: fairlane.Client, upstream: Upstream) -> None:
    upstream.behave = slow("/slow", 3)
    queued = client.queue_request({"method": "GET", "target": "echo", "path": "/slow"})
    with pytest.raises(fairlane.ConflictError) as not_finished:
        client.redeliver_job(queued["id"])
    assert not_finished.value.code == "job_not_finished"
    assert client.cancel_job(queued["id"])["state"] == "cancelled"
    assert client.get_job(queued["id"])["state"] == "cancelled"
    with pytest.raises(fairlane.ConflictError):
        client.cancel_job(queued["id"])


def test_redeliver_a_finished_job(client: fairlane.Client) -> None:
    queued = client.queue_request(
        {"method": "GET", "target": "echo", "path": "/again"},
        webhook={"target": "hooks", "path": "/again"},
    )
    client.wait_for_job(queued["id"], timeout=20, poll_interval=0.1)
    assert client.redeliver_job(queued["id"])["id"] == queued["id"]


def test_wait_stops_at_its_timeout(client: fairlane.Client, upstream: Upstream) -> None:
    upstream.behave = slow("/slower", 2)
    queued = client.queue_request({"method": "GET", "target": "echo", "path": "/slower"})
    with pytest.raises(fairlane.WaitTimeoutError) as waited:
        client.wait_for_job(queued["id"], timeout=0.3, poll_interval=0.1)
    assert waited.value.job["state"] in ("queued", "running")


def test_list_jobs_by_state_page_by_page(client: fairlane.Client) -> None:
    ids: set[str] = set()
    for i in range(3):
        queued = client.queue_request({"method": "GET", "target": "echo", "path": f"/list/{i}"})
        client.wait_for_job(queued["id"], timeout=20, poll_interval=0.1)
        ids.add(queued["id"])
    listed: set[str] = set()
    cursor = None
    while True:
        page = client.list_jobs(state="succeeded", limit=2, cursor=cursor)
        assert len(page["jobs"]) <= 2
        assert all(job["state"] == "succeeded" for job in page["jobs"])
        listed.update(job["id"] for job in page["jobs"])
        cursor = page.get("cursor")
        if not cursor:
            break
    assert ids <= listed


def test_api_refusals_are_error_classes(client: fairlane.Client) -> None:
    with pytest.raises(fairlane.NotFoundError) as missing:
        client.get_job("job_that_does_not_exist")
    assert missing.value.code == "job_not_found"
    with fairlane.Client(client.base_url, "fl_nobody") as stranger:
        with pytest.raises(fairlane.AuthenticationError):
            stranger.queue_request({"method": "GET", "target": "echo", "path": "/x"})
    with pytest.raises(fairlane.BadRequestError):
        client.queue_request({"method": "GET"})  # neither a target nor a url
    request = {"method": "POST", "target": "echo", "path": "/taken"}
    client.queue_request(request, idempotency_key="py-taken")
    with pytest.raises(fairlane.ConflictError) as taken:
        client.queue_request({**request, "body": {"other": True}}, idempotency_key="py-taken")
    assert taken.value.code == "idempotency_conflict"


def test_async_client_queues_and_waits(client: fairlane.Client) -> None:
    async def run() -> dict[str, Any]:
        async with fairlane.AsyncClient(client.base_url, "fl_demo_quickstart") as async_client:
            queued = await async_client.queue_request(
                {"method": "GET", "target": "echo", "path": "/async-job"}
            )
            return await async_client.wait_for_job(queued["id"], timeout=20, poll_interval=0.1)

    assert asyncio.run(run())["state"] == "succeeded"
