"""``pii-vault METHOD URL``: one signed call, answer on stdout, status and headers on stderr.

    pii-vault POST https://<api-id>.execute-api.<region>.amazonaws.com/api/customers/acme/people --data @person.json
    pii-vault GET 'http://127.0.0.1:8002/customers/acme/people/<id>?fields=email'

Creates (``POST .../people``) and secret puts (``PUT .../secrets/<id>``) get a random
``Idempotency-Key`` unless one is given with ``-H``; 409/429/503 answers are retried as
``Client`` does. Loopback URLs (``make dev``) need no credentials and no region.
Exit status: 0 for 2xx/3xx, 1 for an error answer, 2 when no request could be made.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

from pii_vault_client.client import IDEMPOTENCY_HEADER, Client
from pii_vault_client.errors import PiiVaultError

# Matched at the end of the path, after any API Gateway stage prefix.
_KEYED_ROUTES = (
    ("POST", re.compile(r"/customers/[^/]+/people/?$")),
    ("PUT", re.compile(r"/customers/[^/]+/secrets/[^/]+$")),
)
_SHOWN_HEADERS = ("ETag", "Location", "Retry-After", "Idempotent-Replayed")


def wants_idempotency_key(method: str, url: str) -> bool:
    """A create or a secret put: the routes that honour ``Idempotency-Key``."""
    path = urlsplit(url).path
    return any(method.upper() == m and pattern.search(path) for m, pattern in _KEYED_ROUTES)


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header must look like 'Name: value', got {name.strip() or 'nothing'}")
    return name.strip(), value.strip()


def main(argv: Sequence[str] | None = None, *, prog: str = "pii-vault", client: Client | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n")[0])
    parser.add_argument("method", choices=["GET", "POST", "PUT", "PATCH", "DELETE"], type=str.upper)
    parser.add_argument("url")
    parser.add_argument("--data", help="JSON body, or @file to read it from a file")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (e.g. 'If-Match: \"2\"')")
    parser.add_argument("--region", help="default: from the URL, else the AWS configuration (loopback: us-east-1)")
    parser.add_argument("--profile", help="AWS profile for the credentials")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt (default 10)")
    parser.add_argument("--max-attempts", type=int, default=4, help="attempts for 409/429/503 answers (default 4)")
    args = parser.parse_args(argv)
    try:
        body = None
        if args.data is not None:
            if args.data.startswith("@"):
                with open(args.data[1:], encoding="utf-8") as handle:
                    body = json.load(handle)
            else:
                body = json.loads(args.data)
        headers = dict(_header(h) for h in args.header)
        if wants_idempotency_key(args.method, args.url) and not any(
            k.lower() == IDEMPOTENCY_HEADER.lower() for k in headers
        ):
            headers[IDEMPOTENCY_HEADER] = str(uuid.uuid4())
        caller = client or Client(
            region=args.region, profile=args.profile, timeout=args.timeout, max_attempts=args.max_attempts
        )
        response = caller.send(args.method, args.url, json_body=body, headers=headers)
    except (PiiVaultError, ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    print(f"HTTP {response.status}", file=sys.stderr)
    for name in _SHOWN_HEADERS:
        if name.lower() in response.headers:
            print(f"{name}: {response.headers[name.lower()]}", file=sys.stderr)
    text = response.body.decode("utf-8", errors="replace")
    sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
