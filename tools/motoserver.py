"""moto's server, one request at a time: ``python -m tools.motoserver -H HOST -p PORT``.

``moto.server`` serves requests on parallel threads, but moto's DynamoDB backend does
a conditional write as "check, then write" without a lock, so two concurrent writers
could both pass a condition that DynamoDB would let only one pass. Serialising the
requests restores per-item atomicity, which the local stack's concurrency (and the
load script's "lost: 0") depend on. Connections are still accepted in parallel, with
the listen backlog of tools/localserver.py (werkzeug's own is 128).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import ThreadedWSGIServer

from tools.localserver import LISTEN_BACKLOG


class _Server(ThreadedWSGIServer):
    request_queue_size = LISTEN_BACKLOG


def serialized(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """WSGI middleware: the whole request, response body included, under one lock."""
    lock = threading.Lock()

    def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return handle


def serve(argv: list[str] | None, prog: str = "python -m tools.motoserver") -> None:
    """Parse ``-H``/``-p`` and serve until SIGTERM (moto's answers as KMS's: tools.moto_fidelity)."""
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from tools.moto_fidelity import install

    install()  # a disabled or pending-deletion key refuses use, as in KMS
    app = DomainDispatcherApplication(create_backend_app)
    _Server(args.host, args.port, serialized(app), handler=MotoRequestHandler).serve_forever()


def main(argv: list[str] | None = None) -> None:
    serve(argv)


if __name__ == "__main__":
    main()
