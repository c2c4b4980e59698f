"""moto's server, one request at a time: ``python -m tools.motoserver -H HOST -p PORT``.

``moto.server`` serves requests on parallel threads, but moto's DynamoDB backend does
a conditional write as "check, then write" without a lock, so two concurrent writers
could both pass a condition that DynamoDB would let only one pass. Serialising the
requests restores per-item atomicity for each HTTP request. Connections are still
accepted in parallel, with the listen backlog of tools/localserver.py (werkzeug's own
is 128).

What serialising does not give (issue 19): a *call* is not one request. botocore
retries a write whose answer did not arrive in time (read timeout, dropped connection,
a 5xx), and the first attempt, still queued here or already done, is applied all the
same; the retry then meets its own write. DynamoDB's answer to that is the caller's
(recognise its own write; a transaction's ClientRequestToken, which moto ignored until
tools/moto_transactions.py). And every call queues behind the slowest: moto copied every
table a transaction touched, so under load the queue outgrew botocore's read timeout.

A caller that gave up is not served (issue 19, 128 clients): botocore closes the
connection when its read timeout fires and sends the call again. moto used to serve the
abandoned request all the same when its turn came, so once the queue was longer than the
timeout every call was served up to three times, the queue grew with its own retries,
and a third of a 128-client run answered 503. A request whose connection is closed by
the time it reaches the front is dropped unserved, as DynamoDB may drop a request it has
not handled: the caller's retry is the one that counts.

``--lose-answer-every N --lose-answer-marker TEXT`` (tests only: the e2e guard of
issue 19) applies every Nth first attempt of a DynamoDB write whose request mentions
TEXT, then closes the connection without an answer, as a network that drops a
committed write's answer: the caller's SDK retries, and must not report a loss.

With ``--request-log FILE``, every request is also recorded there (one JSON
line each: its signer and what IAM would authorize, tools/recorder/), for the e2e tier's proof
that the generated policies allow everything the local stack's stages send.
"""

from __future__ import annotations

import argparse
import io
import itertools
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import ThreadedWSGIServer

from tools.localserver import LISTEN_BACKLOG

WRITES = frozenset(
    f"DynamoDB_20120810.{op}" for op in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
)

LOST_ANSWER = "lost the answer on purpose (--lose-answer-every):"  # the log line's start, per lost answer
ABANDONED = "dropped a request its caller gave up on:"  # the log line's start, per request not served


class _Server(ThreadedWSGIServer):
    request_queue_size = LISTEN_BACKLOG


class LostAnswers:
    """Which requests lose their answer: every ``every``-th first attempt of a write naming ``marker``."""

    def __init__(self, every: int, marker: str) -> None:
        if every < 1 or not marker:
            raise ValueError("--lose-answer-every needs a positive number and a marker")
        self._marker = marker.encode()
        self._count = itertools.count(1)
        self._every = every

    def __call__(self, environ: dict[str, Any], body: bytes) -> bool:
        first = environ.get("HTTP_AMZ_SDK_REQUEST", "attempt=1").startswith("attempt=1;")
        if environ.get("HTTP_X_AMZ_TARGET") not in WRITES or not first or self._marker not in body:
            return False
        return next(self._count) % self._every == 0


class FifoLock:
    """A lock handed over in arrival order. ``threading.Lock`` wakes an arbitrary waiter, so
    with 128 clients queued some calls waited 7 s while the median waited 1.4 s: past
    botocore's 3 s read timeout, into retries. First come, first served bounds each wait by
    the queue ahead of it (at most one call per client thread)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._held = False

    def __enter__(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the holder's __exit__, which hands the lock over as held

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._held = False


def caller_gone(sock: socket.socket | None) -> bool:
    """True when the caller has closed its end of the connection (its read timeout fired).
    A caller waiting for its answer sends nothing more, so the socket reads as empty."""
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # connected, nothing more sent: still waiting for its answer
    except OSError:
        return True  # reset


def serialized(
    app: Callable[..., Iterable[bytes]], lose_answer: LostAnswers | None = None
) -> Callable[..., list[bytes]]:
    """WSGI middleware: the whole request, response body included, under one lock, in arrival
    order; a request whose caller has gone by its turn is not served."""
    lock = FifoLock()

    def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        lose = False
        if lose_answer is not None:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            lose = lose_answer(environ, body)
        with lock:
            if caller_gone(environ.get("werkzeug.socket")):
                print(f"{ABANDONED} {environ.get('HTTP_X_AMZ_TARGET', '-').split('.')[-1]}", flush=True)
                raise ConnectionAbortedError("the caller gave up before its turn")
            answer = list(app(environ, start_response if not lose else lambda *_: None))
        if lose:
            print(f"{LOST_ANSWER} {environ['HTTP_X_AMZ_TARGET'].split('.')[-1]}", flush=True)  # the operation only
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("answer lost on purpose (--lose-answer-every)")
        return answer

    return handle


def serve(argv: list[str] | None, prog: str = "python -m tools.motoserver") -> None:
    """Parse ``-H``/``-p`` and serve until SIGTERM (moto's answers as KMS's: tools.moto_fidelity)."""
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--request-log", help="append every request as a JSON line (tools/recorder/capture.py)")
    parser.add_argument("--lose-answer-every", type=int, default=0, help="tests only; see the module docstring")
    parser.add_argument("--lose-answer-marker", default="")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from tools import moto_fidelity, moto_transactions

    moto_fidelity.install()  # KMS: key states refuse use, GenerateMac names the key ARN
    moto_transactions.install()  # ClientRequestToken honoured; a transaction copies items, not tables
    if args.request_log:
        from tools.recorder import capture

        capture.install(capture.file_sink(args.request_log), in_process=False)
    lose = LostAnswers(args.lose_answer_every, args.lose_answer_marker) if args.lose_answer_every else None
    app = DomainDispatcherApplication(create_backend_app)
    _Server(args.host, args.port, serialized(app, lose), handler=MotoRequestHandler).serve_forever()


def main(argv: list[str] | None = None) -> None:
    serve(argv)


if __name__ == "__main__":
    main()
