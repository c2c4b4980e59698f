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

``--lose-answer-every N --lose-answer-marker TEXT`` (tests only: the e2e guard of
issue 19) applies every Nth first attempt of a DynamoDB write whose request mentions
TEXT, then closes the connection without an answer, as a network that drops a
committed write's answer: the caller's SDK retries, and must not report a loss.
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


def serialized(
    app: Callable[..., Iterable[bytes]], lose_answer: LostAnswers | None = None
) -> Callable[..., list[bytes]]:
    """WSGI middleware: the whole request, response body included, under one lock, in arrival order."""
    lock = FifoLock()

    def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        lose = False
        if lose_answer is not None:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            lose = lose_answer(environ, body)
        with lock:
            answer = list(app(environ, start_response if not lose else lambda *_: None))
        if lose:
            print(f"{LOST_ANSWER} {environ['HTTP_X_AMZ_TARGET'].split('.')[-1]}", flush=True)  # the operation only
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("answer lost on purpose (--lose-answer-every)")
        return answer

    return handle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.motoserver", description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--lose-answer-every", type=int, default=0, help="tests only; see the module docstring")
    parser.add_argument("--lose-answer-marker", default="")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from tools import moto_fidelity, moto_transactions

    moto_fidelity.install()  # KMS: key states refuse use, GenerateMac names the key ARN
    moto_transactions.install()  # ClientRequestToken honoured; a transaction copies items, not tables
    lose = LostAnswers(args.lose_answer_every, args.lose_answer_marker) if args.lose_answer_every else None
    app = DomainDispatcherApplication(create_backend_app)
    _Server(args.host, args.port, serialized(app, lose), handler=MotoRequestHandler).serve_forever()


if __name__ == "__main__":
    main()
