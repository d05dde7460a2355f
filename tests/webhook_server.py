"""A webhook receiver on 127.0.0.1 (port 0) for the alert tests: records every POSTed JSON body, or misbehaves on
purpose (answers 500 a number of times first, or accepts the connection and never answers)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.loopback import running


@dataclass
class Received:
    """What the receiver saw: decoded bodies in arrival order, and how many requests it answered with an error."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    failed: int = 0

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("kind") == kind]


@contextmanager
def webhook(fail_first: int = 0) -> Iterator[tuple[str, Received]]:
    """A receiver; yields its URL (with a secret-looking path) and what it received. ``fail_first``: answer that
    many requests with HTTP 500 before accepting."""
    got = Received()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
            pass

        def do_POST(self):  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                if got.failed < fail_first:
                    got.failed += 1
                    self.send_response(500)
                    self.end_headers()
                    return
                got.messages.append(json.loads(body))
                got.paths.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

    with running(Handler) as url:
        yield f"{url}/services/T000/B000/SECRETTOKEN", got


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers a byte: each try hangs to its
    timeout. Yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/SECRETTOKEN"
    finally:
        sock.close()


def closed_port_url() -> str:
    """A URL on a port nobody listens on (bound, then closed: connections are refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hooks/SECRETTOKEN"
