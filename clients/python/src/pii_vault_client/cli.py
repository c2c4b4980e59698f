"""``pii-vault``: the client's calls from the command line, JSON on stdout.

    pii-vault people create acme --data @person.json
    pii-vault people get acme <person-id> --fields email,name [--masked]
    pii-vault people patch acme <person-id> --data '{"name": "Ada"}' --if-match 2
    pii-vault people search acme --data @query.json          # {"email": ...}: never in argv
    pii-vault secrets put acme api-token --data @secret.json  # {"value": ...}: never in argv
    pii-vault secrets get acme api-token [--version 1]
    pii-vault secrets versions acme api-token
    pii-vault secrets delete acme api-token [--no-wait] [--max-wait 600]
    pii-vault GET 'http://127.0.0.1:8002/customers/acme/people/<id>?fields=email'   # any route, raw

Endpoints: ``--writer-url``, ``--reader-url``, ``--masked-url`` or ``PII_VAULT_WRITER_URL``,
``PII_VAULT_READER_URL``, ``PII_VAULT_MASKED_URL``. ``--data`` takes JSON, ``@file`` or
``-`` (stdin), so that personal data and secrets stay out of the process list and shell
history. Loopback URLs (``make dev``) need no credentials and no region.

Output: the answer as JSON on stdout (raw calls: the body; status and ``ETag``/
``Location``/``Retry-After`` on stderr). Exit status: 0 success; 1 the service answered
an error (its ``{"status", "code", "message"}`` on stdout); 2 no request was made or no
answer came (usage, input, credentials, connection); 3 ``secrets delete`` still had
versions to remove when ``--max-wait`` ran out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pii_vault_client.base import IDEMPOTENCY_HEADER
from pii_vault_client.client import Client
from pii_vault_client.config import Config
from pii_vault_client.errors import PiiVaultError, TransportError, WaiterError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
EXIT_OK, EXIT_ERROR_ANSWER, EXIT_NO_ANSWER, EXIT_STILL_DELETING = 0, 1, 2, 3
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


def _data(text: str | None) -> Any:
    """``--data``: JSON, ``@file`` or ``-`` (stdin)."""
    if text is None:
        return None
    if text == "-":
        return json.load(sys.stdin)
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            return json.load(handle)
    return json.loads(text)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="default: from the URL, else the AWS configuration (loopback: us-east-1)")
    parser.add_argument("--profile", help="AWS profile for the credentials")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    parser.add_argument("--max-attempts", type=int, default=4, help="attempts in all, retries included (default 4)")


def _config(args: argparse.Namespace) -> Config:
    return Config(read_timeout=args.timeout, retries={"total_max_attempts": args.max_attempts, "mode": "standard"})


# -- subcommands -----------------------------------------------------------------------


def _subcommands(prog: str) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common)
    for stage in ("writer", "reader", "masked"):
        env = f"PII_VAULT_{stage.upper()}_URL"
        common.add_argument(f"--{stage}-url", default=os.environ.get(env), help=f"the {stage} stage (default ${env})")
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n")[0])
    groups = parser.add_subparsers(dest="group", required=True)

    def command(group: Any, name: str, *ids: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, parents=[common])
        sub.add_argument("customer_id")
        for id_name in ids:
            sub.add_argument(id_name)
        return sub

    people = groups.add_parser("people").add_subparsers(dest="command", required=True)
    command(people, "create").add_argument("--data", required=True, help="the person: JSON, @file or -")
    get = command(people, "get", "person_id")
    get.add_argument("--fields", help="comma-separated fields to decrypt")
    get.add_argument("--masked", action="store_true", help="read the masked stage")
    patch = command(people, "patch", "person_id")
    patch.add_argument("--data", required=True, help="the fields to change: JSON, @file or -")
    patch.add_argument("--if-match", type=int, help="the version the change is based on")
    command(people, "search").add_argument("--data", required=True, help='{"email": ..., "fields"?: [...]}')
    secrets = groups.add_parser("secrets").add_subparsers(dest="command", required=True)
    command(secrets, "put", "secret_id").add_argument("--data", required=True, help='{"value": ...}: @file or -')
    command(secrets, "get", "secret_id").add_argument("--version", type=int)
    command(secrets, "versions", "secret_id")
    delete = command(secrets, "delete", "secret_id")
    delete.add_argument("--no-wait", action="store_true", help="one DELETE; do not repeat it on 202")
    delete.add_argument("--max-wait", type=float, default=600.0, help="seconds to spend waiting (default 600)")
    return parser


def _run(vault: Client, args: argparse.Namespace) -> Any:
    tenant, what = args.customer_id, (args.group, args.command)
    if what == ("people", "create"):
        return vault.create_person(tenant, _data(args.data))
    if what == ("people", "get"):
        fields = args.fields.split(",") if args.fields else None
        read = vault.get_masked_person if args.masked else vault.get_person
        return read(tenant, args.person_id, fields=fields)
    if what == ("people", "patch"):
        return vault.patch_person(tenant, args.person_id, _data(args.data), if_match=args.if_match)
    if what == ("people", "search"):
        query = _data(args.data)
        if not isinstance(query, dict) or not isinstance(query.get("email"), str):
            raise ValueError('--data must be {"email": "...", "fields"?: [...]}')
        return vault.search_people(tenant, query["email"], fields=query.get("fields"))
    if what == ("secrets", "put"):
        body = _data(args.data)
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise ValueError('--data must be {"value": "..."}')
        return vault.put_secret(tenant, args.secret_id, body["value"])
    if what == ("secrets", "get"):
        return vault.get_secret(tenant, args.secret_id, version=args.version)
    if what == ("secrets", "versions"):
        return vault.secret_versions(tenant, args.secret_id)
    return vault.delete_secret(tenant, args.secret_id, wait=not args.no_wait, max_wait=args.max_wait)


def _as_json(result: Any) -> Any:
    """A typed answer as JSON: its fields, without the response metadata."""
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "meta"}
    return {k: _as_json(v) if dataclasses.is_dataclass(v) else _items(v) for k, v in fields.items()}


def _items(value: Any) -> Any:
    return [_as_json(v) if dataclasses.is_dataclass(v) else v for v in value] if isinstance(value, list) else value


def _typed(argv: Sequence[str], prog: str, client: Client | None) -> int:
    args = _subcommands(prog).parse_args(argv)
    try:
        vault = client or Client(
            args.writer_url,
            args.reader_url,
            args.masked_url,
            region=args.region,
            profile=args.profile,
            config=_config(args),
        )
        result = _run(vault, args)
    except WaiterError as exc:
        print(json.dumps(_as_json(exc.last)))
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return EXIT_STILL_DELETING
    except PiiVaultError as exc:
        if exc.status and not isinstance(exc, TransportError):
            print(json.dumps({"status": exc.status, "code": exc.code, "message": exc.message}))
            print(f"{prog}: {exc}", file=sys.stderr)
            return EXIT_ERROR_ANSWER
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    except (ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(json.dumps(_as_json(result), ensure_ascii=False))
    return EXIT_OK


# -- raw calls: METHOD URL -------------------------------------------------------------


def _raw(argv: Sequence[str], prog: str, client: Client | None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description="One signed call to any pii-vault URL.")
    parser.add_argument("method", choices=METHODS, type=str.upper)
    parser.add_argument("url")
    parser.add_argument("--data", help="JSON body, @file or - (stdin)")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (e.g. 'If-Match: \"2\"')")
    _connection_options(parser)
    args = parser.parse_args(argv)
    try:
        body = _data(args.data)
        headers = dict(_header(h) for h in args.header)
        if wants_idempotency_key(args.method, args.url) and not any(
            k.lower() == IDEMPOTENCY_HEADER.lower() for k in headers
        ):
            headers[IDEMPOTENCY_HEADER] = str(uuid.uuid4())
        caller = client or Client(region=args.region, profile=args.profile, config=_config(args))
        response = caller.send(args.method, args.url, json_body=body, headers=headers)
    except (PiiVaultError, ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(f"HTTP {response.status}", file=sys.stderr)
    for name in _SHOWN_HEADERS:
        if name.lower() in response.headers:
            print(f"{name}: {response.headers[name.lower()]}", file=sys.stderr)
    text = response.body.decode("utf-8", errors="replace")
    sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))
    return EXIT_OK if response.ok else EXIT_ERROR_ANSWER


def main(argv: Sequence[str] | None = None, *, prog: str = "pii-vault", client: Client | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0].upper() in METHODS:
        return _raw(args, prog, client)
    return _typed(args, prog, client)


if __name__ == "__main__":
    sys.exit(main())
