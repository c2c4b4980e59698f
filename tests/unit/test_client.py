"""tools.client signs for API Gateway's IAM authorizer: checked by recomputing SigV4 here.

The verifier below is written from the AWS SigV4 specification (canonical request,
string to sign, derived signing key), independently of botocore, so a signature the
client produces is accepted only if it is what API Gateway would compute.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote, unquote, urlsplit

import pytest
from botocore.credentials import Credentials

from tools import client

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/api/customers/acme/people?limit=5&fields=email,name"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def verify(method: str, url: str, body: bytes, headers: dict[str, str], secret_key: str, service: str = "execute-api") -> bool:
    """Recompute the SigV4 signature of a signed request and compare."""
    lower = {k.lower(): v for k, v in headers.items()}
    algorithm, _, rest = lower["authorization"].partition(" ")
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    _access, date, region, svc, terminator = parts["Credential"].split("/")
    assert (algorithm, svc, terminator) == ("AWS4-HMAC-SHA256", service, "aws4_request")
    signed_headers = parts["SignedHeaders"].split(";")
    assert "host" in signed_headers and "x-amz-date" in signed_headers
    split = urlsplit(url)
    # What the server sees: HTTP/1.1 clients (requests) always send Host from the URL;
    # the query is decoded and re-encoded (every character outside A-Za-z0-9-_.~).
    lower.setdefault("host", split.netloc)
    query = sorted(
        (quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
        for k, _, v in (pair.partition("=") for pair in split.query.split("&") if pair)
    )
    canonical = "\n".join([
        method,
        quote(split.path or "/", safe="/-_.~"),
        "&".join(f"{k}={v}" for k, v in query),
        "".join(f"{name}:{' '.join(lower[name].split())}\n" for name in signed_headers),
        ";".join(signed_headers),
        hashlib.sha256(body).hexdigest(),
    ])
    amz_date = lower["x-amz-date"]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), date), region), service), "aws4_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["Signature"])


def _signed(body: bytes = b'{"name":"Ada"}', token: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "If-Match": '"3"'}
    return client.sign("POST", URL, body, headers, Credentials(ACCESS_KEY, SECRET_KEY, token), "eu-west-1")


def test_given_a_request_when_signed_then_an_independent_sigv4_computation_accepts_it() -> None:
    body = b'{"name":"Ada"}'

    headers = _signed(body)

    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert verify("POST", URL, body, headers, SECRET_KEY)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: ({**h, "If-Match": '"4"'}, b),
        lambda h, b: ({**h, "Content-Type": "text/plain"}, b),
    ],
    ids=["body changed", "signed header changed", "content type changed"],
)
def test_given_a_signed_request_when_altered_then_the_signature_no_longer_verifies(tamper) -> None:
    body = b'{"name":"Ada"}'
    headers, altered_body = tamper(_signed(body), body)

    assert not verify("POST", URL, altered_body, headers, SECRET_KEY)


def test_given_a_query_with_reserved_characters_then_it_is_sent_encoded_as_signed() -> None:
    """API Gateway checks the query percent-encoded (a comma as %2C): sign and send it so."""
    assert client.encoded_url(URL).endswith("?limit=5&fields=email%2Cname")
    assert client.encoded_url("http://h/x?fields=email%2Cname") == "http://h/x?fields=email%2Cname"
    assert verify("POST", client.encoded_url(URL), b'{"name":"Ada"}', _signed(), SECRET_KEY)


def test_given_a_wrong_secret_key_then_the_signature_does_not_verify() -> None:
    assert not verify("POST", URL, b'{"name":"Ada"}', _signed(), SECRET_KEY[:-1] + "X")


def test_given_temporary_credentials_then_the_session_token_is_sent_and_signed() -> None:
    headers = _signed(token="FQoGZXIvYXdzEXAMPLETOKEN")

    assert headers["X-Amz-Security-Token"] == "FQoGZXIvYXdzEXAMPLETOKEN"
    assert "x-amz-security-token" in headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert verify("POST", URL, b'{"name":"Ada"}', headers, SECRET_KEY)


@pytest.mark.parametrize(
    ("url", "default", "region"),
    [
        ("https://abc123.execute-api.ap-southeast-2.amazonaws.com/api/x", None, "ap-southeast-2"),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com/api/x", "us-east-1", "eu-west-1"),
        ("http://127.0.0.1:8001/customers/acme/people", "us-east-1", "us-east-1"),
    ],
)
def test_given_an_url_then_the_region_comes_from_it_or_the_default(url: str, default: str | None, region: str) -> None:
    assert client.region_of(url, default) == region


def test_given_a_local_url_without_region_then_it_says_what_to_pass() -> None:
    with pytest.raises(client.ClientError, match="region"):
        client.region_of("http://127.0.0.1:8001/x")


def test_given_a_malformed_header_option_then_the_cli_exits_2(capsys) -> None:
    assert client.main(["GET", "http://127.0.0.1:1/x", "-H", "no-colon", "--region", "us-east-1"]) == 2
    assert "Name: value" in capsys.readouterr().err


def test_given_a_json_body_then_it_is_sent_compact_and_signed_as_sent() -> None:
    body = json.dumps({"value": "x"}, separators=(",", ":")).encode()
    headers = client.sign("PUT", URL, body, {"Content-Type": "application/json"},
                          Credentials(ACCESS_KEY, SECRET_KEY), "eu-west-1")

    assert verify("PUT", URL, body, headers, SECRET_KEY)
