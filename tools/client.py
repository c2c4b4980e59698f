"""A small caller for pii-vault's deployed stages: requests signed with SigV4.

The deployed routes use API Gateway's IAM authorizer, so every request must carry a
Signature Version 4 ``Authorization`` header for the ``execute-api`` service, made with
the caller's AWS credentials (the standard chain: environment, profile, SSO, role).
The caller's IAM policy needs ``execute-api:Invoke`` on the stage's routes. The same
client works against the local stack, which accepts (and ignores) the signature.

    python -m tools.client POST https://abc123.execute-api.eu-west-1.amazonaws.com/api/customers/acme/people \\
        --data '{"name": "Ada", ...}'
    python -m tools.client GET http://127.0.0.1:8002/customers/acme/people/<id> --region us-east-1

From Python::

    from tools.client import call
    response = call("GET", url, region="eu-west-1")        # a requests.Response
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

SERVICE = "execute-api"
TIMEOUT_S = 15
_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$")


class ClientError(RuntimeError):
    """The request could not be signed (no credentials, no region)."""


def region_of(url: str, default: str | None = None) -> str:
    """The region in an execute-api URL, else ``default``."""
    match = _API_HOST.match(urlsplit(url).hostname or "")
    if match:
        return match.group("region")
    if default:
        return default
    raise ClientError(f"cannot tell the region of {url}; pass region= (--region)")


def encoded_url(url: str) -> str:
    """The URL with its query percent-encoded as SigV4 canonicalises it.

    botocore signs the query string exactly as given, while API Gateway re-encodes every
    character outside ``A-Za-z0-9-_.~`` before checking: ``?fields=email,name`` signed
    raw would be refused. Encoding first makes what is signed equal what is checked.
    """
    parts = urlsplit(url)
    query = urlencode(parse_qsl(parts.query, keep_blank_values=True), quote_via=quote, safe="-_.~")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def sign(
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    credentials: Any,
    region: str,
) -> dict[str, str]:
    """The headers to send: ``headers`` plus Host-bound SigV4 ``Authorization``,
    ``X-Amz-Date`` and, for temporary credentials, ``X-Amz-Security-Token``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method.upper(), url=encoded_url(url), data=body or b"", headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def call(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    region: str | None = None,
    session: Any = None,
    timeout: float = TIMEOUT_S,
) -> Any:
    """Send one signed request and return the ``requests.Response``."""
    import boto3
    import requests

    session = session or boto3.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ClientError("no AWS credentials found (environment, profile or role)")
    region = region_of(url, region or session.region_name)
    body = None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode("utf-8")
    base = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        base.setdefault("Content-Type", "application/json")
    url = encoded_url(url)
    signed = sign(method, url, body, base, credentials.get_frozen_credentials(), region)
    return requests.request(method.upper(), url, data=body, headers=signed, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.client", description=__doc__.split("\n")[0])
    parser.add_argument("method", choices=["GET", "POST", "PUT", "PATCH", "DELETE"], type=str.upper)
    parser.add_argument("url")
    parser.add_argument("--data", help="JSON body, or @file to read it from a file")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (e.g. 'If-Match: \"2\"')")
    parser.add_argument("--region", help="default: from the URL, else the SDK configuration")
    parser.add_argument("--profile", help="AWS profile for the credentials")
    args = parser.parse_args(argv)

    import boto3

    try:
        body = None
        if args.data is not None:
            text = open(args.data[1:], encoding="utf-8").read() if args.data.startswith("@") else args.data
            body = json.loads(text)
        headers = dict(_header(h) for h in args.header)
        response = call(args.method, args.url, json_body=body, headers=headers, region=args.region,
                        session=boto3.session.Session(profile_name=args.profile))
    except (ClientError, ValueError, OSError) as exc:
        print(f"tools.client: {exc}", file=sys.stderr)
        return 2
    print(f"HTTP {response.status_code}", file=sys.stderr)
    for name in ("ETag", "Location", "Retry-After"):
        if name in response.headers:
            print(f"{name}: {response.headers[name]}", file=sys.stderr)
    sys.stdout.write(response.text + ("\n" if response.text and not response.text.endswith("\n") else ""))
    return 0 if response.status_code < 400 else 1


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header must look like 'Name: value', got {name.strip() or 'nothing'}")
    return name.strip(), value.strip()


if __name__ == "__main__":
    sys.exit(main())
