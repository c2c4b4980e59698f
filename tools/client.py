"""``python -m tools.client``: the pii-vault client (clients/python) from a checkout.

A thin wrapper: the client lives in the installable package ``pii_vault_client``
(``pip install clients/python`` gives the same CLI as ``pii-vault``). Against the local
stack nothing needs exporting: loopback URLs are signed with fixed dummy credentials.
From Python, ``from tools import client`` gives ``client.Client`` and ``client.call``
(one signed request: ``client.call("GET", url, session=boto3_session)``).

    python -m tools.client people get acme <id> --reader-url http://127.0.0.1:8002
    python -m tools.client GET http://127.0.0.1:8002/customers/acme/people/<id>
    python -m tools.client POST https://<api-id>.execute-api.<region>.amazonaws.com/api/customers/acme/people \\
        --data @person.json
"""

from __future__ import annotations

import sys
from pathlib import Path

_SOURCE = str(Path(__file__).resolve().parent.parent / "clients" / "python" / "src")
if _SOURCE not in sys.path:
    sys.path.insert(0, _SOURCE)

from pii_vault_client import Client, call  # noqa: E402
from pii_vault_client.cli import main as _main  # noqa: E402

__all__ = ["Client", "call", "main"]


def main(argv: list[str] | None = None) -> int:
    return _main(argv, prog="python -m tools.client")


if __name__ == "__main__":
    sys.exit(main())
