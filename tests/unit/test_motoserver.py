"""The local moto server's queue (tools/motoserver.py): one request at a time, and none for a
caller that has already given up (its read timeout fired and it closed the connection)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tools.motoserver import caller_gone, serialized


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    server_end, caller_end = socket.socketpair()
    yield server_end, caller_end
    server_end.close()
    caller_end.close()


def _app(served: list[str]) -> Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        served.append(environ["HTTP_X_AMZ_TARGET"])
        start_response("200 OK", [])
        return [b"{}"]

    return app


def _environ(sock: socket.socket) -> dict[str, Any]:
    return {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem", "werkzeug.socket": sock}


def test_given_a_caller_still_waiting_then_its_request_is_served(
    connection: tuple[socket.socket, socket.socket],
) -> None:
    server_end, _caller_end = connection
    served: list[str] = []

    answer = serialized(_app(served))(_environ(server_end), lambda *_: None)

    assert answer == [b"{}"] and served == ["DynamoDB_20120810.PutItem"]
    assert not caller_gone(server_end)


def test_given_a_caller_that_gave_up_then_its_request_is_dropped_unserved(
    connection: tuple[socket.socket, socket.socket], capsys: pytest.CaptureFixture[str]
) -> None:
    server_end, caller_end = connection
    caller_end.close()  # botocore's read timeout: urllib3 closes the connection, then retries on a new one
    served: list[str] = []

    with pytest.raises(ConnectionAbortedError):  # werkzeug drops the connection quietly
        serialized(_app(served))(_environ(server_end), lambda *_: None)

    assert served == []
    assert "dropped a request its caller gave up on: PutItem" in capsys.readouterr().out


def test_given_no_socket_then_the_caller_counts_as_waiting() -> None:
    assert not caller_gone(None)
