"""Listen backlog for the local stack's HTTP servers, and ``chalice local`` with it.

    python -m tools.localserver --stage writer --host 127.0.0.1 --port 8001 --no-autoreload

``chalice local`` serves every connection on its own thread (``socketserver.ThreadingMixIn``)
but listens with socketserver's default backlog, ``request_queue_size = 5``. When more
clients connect at once than the accept loop takes up (64 load clients, 2 busy cores),
the kernel's accept queue overflows: it drops handshakes (the client retransmits its SYN
after 1, 3, 7 s: "one create waited 8 s") or resets connections it had already
completed ("Connection reset by peer"). This wrapper raises the backlog and then runs
chalice's own CLI unchanged; the kernel caps it at ``net.core.somaxconn``. moto's server
(werkzeug, backlog 128) gets the same backlog in tools/motoserver.py.
"""

from __future__ import annotations

import sys
from typing import NoReturn

# Connections waiting to be accepted per server; well above the clients of `make load`
# (at most 128, tools/load.py) plus each stage's botocore connections to moto.
LISTEN_BACKLOG = 1024


def main(argv: list[str] | None = None) -> NoReturn:
    from chalice import local
    from chalice.cli import cli

    # The documented socketserver knob, read when the server binds (after this line).
    local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    args = ["local", *(sys.argv[1:] if argv is None else argv)]
    cli.main(args=args, prog_name="chalice", obj={})  # standalone click: exits with chalice's status


if __name__ == "__main__":
    main()
