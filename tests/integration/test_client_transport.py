"""The client's pooled transport over real loopback HTTP: one connection reused across calls.

A small HTTP/1.1 server on 127.0.0.1 records the client port of every request: a client
that built a new connection (or opener) per call would show a new port each time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pii_vault_client import Client, Config, TransportError

SECRET = {"id": "hook", "version": 1, "created_at": "c", "value": "whsec_transport_test"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    ports: list[int]

    def do_GET(self) -> None:
        type(self).ports.append(self.client_address[1])
        body = json.dumps(SECRET).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[int]]]:
    ports: list[int] = []
    handler = type("Handler", (_Handler,), {"ports": ports})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", ports
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_given_several_calls_then_one_pooled_connection_serves_them_all(
    server: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ports = server
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # never used for a loopback URL
    with Client(reader_url=url) as vault:
        values = [vault.get_secret("acme", "hook").value for _ in range(5)]

    assert values == [SECRET["value"]] * 5
    assert len(ports) == 5 and len(set(ports)) == 1


def test_given_a_closed_port_then_a_transport_error_after_the_configured_attempts(
    server: tuple[str, list[int]],
) -> None:
    url, _ = server
    closed = url.rsplit(":", 1)[0] + ":9"
    vault = Client(reader_url=closed, config=Config(retries={"total_max_attempts": 2}, backoff=0), sleep=lambda _: None)
    attempts: list[int] = []
    vault.events.register("after-receive", lambda event: attempts.append(event.attempt))

    with pytest.raises(TransportError):
        vault.get_secret("acme", "hook")

    assert attempts == [1, 2]
