"""A real Fairlane and a loopback upstream, started once for the session."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]
VECTORS = REPO / "spec" / "test-vectors"


def vectors(name: str) -> Any:
    """A file of the shared test vectors (spec/test-vectors/README.md)."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# How the upstream answers a request: (status, headers, body), or None to echo it.
Behavior = Callable[[Seen], "tuple[int, dict[str, str], bytes] | None"]


@dataclass
class Upstream:
    """A loopback HTTP server that records what reaches it and echoes it as JSON."""

    url: str
    requests: list[Seen] = field(default_factory=list)
    behave: Behavior = lambda _: None


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            seen = Seen(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            upstream.requests.append(seen)
            answer = upstream.behave(seen)
            if answer is None:
                echo = {"method": seen.method, "url": seen.path, "headers": seen.headers}
                answer = (200, {"content-type": "application/json"}, json.dumps(echo).encode())
            status, headers, body = answer
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


def serve(make: Callable[[], type[BaseHTTPRequestHandler]]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), make())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    holder = Upstream(url="")
    server = serve(lambda: _handler(holder))
    holder.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield holder
    server.shutdown()


@pytest.fixture(autouse=True)
def _fresh_upstream(upstream: Upstream) -> None:
    upstream.requests.clear()
    upstream.behave = lambda _: None


def start_fairlane(
    env: dict[str, str], config: str = "fairlane.yaml"
) -> tuple[str, subprocess.Popen[str]]:
    """A real Fairlane, embedded, in its own process as `fairlane start` runs it, on free
    ports, with a config of spec/test-vectors and a new data directory. Returns its proxy
    URL and the process."""
    node = os.environ.get("FAIRLANE_NODE") or str(REPO / "node_modules" / ".bin" / "node")
    main = REPO / "services" / "fairlane" / "src" / "main.ts"
    process = subprocess.Popen(
        [node, "--conditions=development", str(main), "start", "--config", str(VECTORS / config)],
        env={
            **os.environ,
            **env,
            "FAIRLANE_PORT": "0",
            "FAIRLANE_ADMIN_PORT": "0",
            "FAIRLANE_DATA_DIR": tempfile.mkdtemp(prefix="fairlane-python-"),
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if '"fairlane started"' in line:
            url: str = json.loads(line)["proxy"]
            # Every later line is read, so a full pipe never blocks the server's logging.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return url, process
    raise RuntimeError(f"fairlane exited with {process.wait()} before it started")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture(scope="session")
def fairlane_url(upstream: Upstream) -> Iterator[str]:
    url, process = start_fairlane({"ECHO_URL": upstream.url})
    yield url
    stop(process)
