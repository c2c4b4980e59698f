"""The pii-vault client (clients/python): SigV4 checked by recomputing it here, and the
client's behaviour (retries, idempotency keys, pages, errors, credentials) against a fake
transport: no network.

The verifier below is written from the AWS SigV4 specification (canonical request,
string to sign, derived signing key), independently of botocore, so a signature the
client produces is accepted only if it is what API Gateway would compute.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from botocore.credentials import Credentials

from pii_vault_client import errors
from pii_vault_client import signing as client
from pii_vault_client.base import retry_after_seconds
from pii_vault_client.cli import main as cli_main
from pii_vault_client.client import Client
from pii_vault_client.config import Config

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/api/customers/acme/people?limit=5&fields=email,name"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def verify(
    method: str, url: str, body: bytes | None, headers: Mapping[str, str], secret_key: str, service: str = "execute-api"
) -> bool:
    """Recompute the SigV4 signature of a signed request and compare (no body: the empty payload's hash)."""
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
    canonical = "\n".join(
        [
            method,
            quote(split.path or "/", safe="/-_.~"),
            "&".join(f"{k}={v}" for k, v in query),
            "".join(f"{name}:{' '.join(lower[name].split())}\n" for name in signed_headers),
            ";".join(signed_headers),
            hashlib.sha256(body or b"").hexdigest(),
        ]
    )
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
def test_given_a_signed_request_when_altered_then_the_signature_no_longer_verifies(
    tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
) -> None:
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


def test_given_a_loopback_url_without_region_then_the_local_stacks_region_is_used() -> None:
    assert client.region_of("http://127.0.0.1:8001/x") == client.LOCAL_REGION


def test_given_another_url_without_region_then_it_says_what_to_pass() -> None:
    with pytest.raises(errors.CredentialsError, match="region"):
        client.region_of("https://vault.example.com/x")


def test_given_a_malformed_header_option_then_the_cli_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["GET", "http://127.0.0.1:1/x", "-H", "no-colon"]) == 2
    assert "Name: value" in capsys.readouterr().err


def test_given_a_json_body_then_it_is_sent_compact_and_signed_as_sent() -> None:
    body = json.dumps({"value": "x"}, separators=(",", ":")).encode()
    headers = client.sign(
        "PUT", URL, body, {"Content-Type": "application/json"}, Credentials(ACCESS_KEY, SECRET_KEY), "eu-west-1"
    )

    assert verify("PUT", URL, body, headers, SECRET_KEY)


# --------------------------------------------------------------------------- client behaviour


# A scripted answer: (status, headers, JSON payload or raw bytes).
Scripted = tuple[int, dict[str, str], object]


class FakeTransport:
    """Answers from a script, records every request (method, url, headers, body, timeout)."""

    def __init__(self, *answers: Scripted | BaseException) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str], bytes | None, float]] = []

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, url, dict(headers), body, timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, answer_headers, payload = answer
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return status, {k.lower(): v for k, v in answer_headers.items()}, raw


def _client(transport: FakeTransport, sleeps: list[float] | None = None, **config: Any) -> Client:
    import random

    return Client(
        "https://w1.execute-api.eu-west-1.amazonaws.com/api",
        "https://r1.execute-api.eu-west-1.amazonaws.com/api",
        "https://m1.execute-api.eu-west-1.amazonaws.com/api",
        credentials=Credentials(ACCESS_KEY, SECRET_KEY),
        transport=transport,
        sleep=(sleeps if sleeps is not None else []).append,
        rng=random.Random(7),
        config=Config(**config),
    )


def _person(person_id: str, version: int = 1) -> dict[str, object]:
    return {"id": person_id, "version": version, "created_at": "t", "updated_at": "t", "data": {"name": "n"}}


def _error(code: str) -> dict[str, str]:
    return {"code": code, "message": "m"}


CREATED: Scripted = (201, {}, {"id": "a" * 32, "version": 1, "created_at": "2024-01-01T00:00:00Z"})
SECRET: Scripted = (200, {"ETag": '"1"'}, {"id": "s", "version": 1, "created_at": "2024-01-01T00:00:00Z", "value": "v"})


def test_given_a_create_then_it_is_signed_and_carries_a_random_uuid4_idempotency_key() -> None:
    import uuid

    transport = FakeTransport(CREATED, CREATED)
    vault = _client(transport)

    vault.create_person("acme", {"name": "Ada"})
    vault.create_person("acme", {"name": "Ada"})

    (m1, url, h1, body, _), (_, _, h2, _, _) = transport.requests
    assert (m1, url) == ("POST", "https://w1.execute-api.eu-west-1.amazonaws.com/api/customers/acme/people")
    assert uuid.UUID(h1["Idempotency-Key"]).version == 4
    assert h1["Idempotency-Key"] != h2["Idempotency-Key"]
    assert verify("POST", url, body, h1, SECRET_KEY)


@pytest.mark.parametrize("status", [409, 429, 503])
def test_given_a_retryable_answer_then_the_client_waits_retry_after_plus_jitter_and_resends_the_same_key(
    status: int,
) -> None:
    transport = FakeTransport((status, {"Retry-After": "2"}, _error("x")), CREATED)
    sleeps: list[float] = []

    result = _client(transport, sleeps).put_secret("acme", "hook", "v")

    assert result.version == 1
    assert len(transport.requests) == 2
    assert 2.0 <= sleeps[0] <= 3.0
    keys = {r[2]["Idempotency-Key"] for r in transport.requests}
    assert len(keys) == 1
    assert all(verify("PUT", r[1], r[3], r[2], SECRET_KEY) for r in transport.requests)


def test_given_retryable_answers_without_end_then_attempts_are_bounded_and_the_typed_error_raised() -> None:
    transport = FakeTransport(*[(429, {"Retry-After": "1"}, _error("throttled"))] * 3)
    sleeps: list[float] = []

    with pytest.raises(errors.ThrottledError) as raised:
        _client(transport, sleeps, retries={"total_max_attempts": 3}).get_person("acme", "a" * 32)

    assert len(transport.requests) == 3 and len(sleeps) == 2
    assert raised.value.status == 429 and raised.value.retry_after == 1.0


def test_given_no_retry_after_then_the_wait_doubles_from_the_backoff() -> None:
    transport = FakeTransport(*[(503, {}, _error("service_unavailable"))] * 3, SECRET)
    sleeps: list[float] = []

    _client(transport, sleeps, backoff=0.1).get_secret("acme", "s")

    assert [round(s / base, 3) >= 1.0 and s <= base * 1.5 for s, base in zip(sleeps, (0.1, 0.2, 0.4), strict=True)] == [
        True
    ] * 3


@pytest.mark.parametrize(
    ("answer", "attempts"),
    [
        ((503, {"Retry-After": "60"}, _error("service_unavailable")), 1),
        ((409, {"Retry-After": "1"}, _error("version_limit")), 1),
        ((412, {}, _error("precondition_failed")), 1),
        ((400, {}, _error("validation_error")), 1),
    ],
    ids=["retry-after above the bound", "version limit", "412", "400"],
)
def test_given_an_answer_that_waiting_cannot_fix_then_it_is_not_retried(answer: Scripted, attempts: int) -> None:
    transport = FakeTransport(answer)

    with pytest.raises(errors.PiiVaultError):
        _client(transport, max_retry_wait=20).patch_person("acme", "a" * 32, {"name": "x"}, if_match=2)

    assert len(transport.requests) == attempts
    assert transport.requests[0][2]["If-Match"] == '"2"'
    assert "Idempotency-Key" not in transport.requests[0][2]


def test_given_an_http_date_retry_after_then_it_is_read_as_seconds_from_now() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0) == 5.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_given_no_answer_then_reads_and_keyed_writes_are_retried_and_others_raise() -> None:
    transport = FakeTransport(TimeoutError("timed out"), SECRET, ConnectionResetError())
    vault = _client(transport, read_timeout=2.5)

    assert vault.get_secret("acme", "s").id == "s"
    with pytest.raises(errors.TransportError):
        vault.patch_person("acme", "a" * 32, {"name": "x"})

    assert [r[0] for r in transport.requests] == ["GET", "GET", "PATCH"]
    assert {r[4] for r in transport.requests} == {2.5}
    transport.answers += [ConnectionResetError(), CREATED]
    assert vault.create_person("acme", {"name": "Ada"}).version == 1
    assert transport.requests[-1][2]["Idempotency-Key"] == transport.requests[-2][2]["Idempotency-Key"]


def test_given_pages_then_the_iterator_follows_next_tokens_until_the_end() -> None:
    transport = FakeTransport(
        (200, {}, {"items": [_person("1"), _person("2")], "next": "tok/1+="}),
        (200, {}, {"items": [_person("3")], "next": None}),
    )

    pages = list(_client(transport).list_pages("acme", limit=2, fields=["email", "name"]))

    assert [[p.id for p in page.items] for page in pages] == [["1", "2"], ["3"]]
    first, second = (r[1] for r in transport.requests)
    assert first.endswith("/customers/acme/people?limit=2&fields=email%2Cname")
    assert second.endswith("&next=tok%2F1%2B%3D")


def test_given_many_ids_then_one_multi_get_returns_items_and_missing() -> None:
    transport = FakeTransport((200, {}, {"items": [_person("a" * 32)], "next": None, "missing": ["b" * 32]}))

    people = _client(transport).get_people("acme", ["a" * 32, "b" * 32])

    assert [p.id for p in people.items] == ["a" * 32] and people.missing == ["b" * 32]
    assert transport.requests[0][1].endswith(f"/people?ids={'a' * 32}%2C{'b' * 32}")


def test_given_an_id_with_path_characters_then_it_stays_one_segment() -> None:
    transport = FakeTransport(SECRET)

    _client(transport).get_secret("acme", "../people")

    assert transport.requests[0][1].endswith("/customers/acme/secrets/..%2Fpeople")


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (400, _error("validation_error"), errors.ValidationError, "validation_error"),
        (400, _error("malformed_json"), errors.MalformedJsonError, "malformed_json"),
        (403, _error("forbidden"), errors.ForbiddenError, "forbidden"),
        (403, {"message": "Missing Authentication Token"}, errors.ForbiddenError, "forbidden"),
        (404, _error("not_found"), errors.NotFoundError, "not_found"),
        (405, _error("method_not_allowed"), errors.MethodNotAllowedError, "method_not_allowed"),
        (409, _error("request_in_progress"), errors.RequestInProgressError, "request_in_progress"),
        (412, _error("precondition_failed"), errors.PreconditionFailedError, "precondition_failed"),
        (413, _error("payload_too_large"), errors.PayloadTooLargeError, "payload_too_large"),
        (422, _error("idempotency_key_reused"), errors.IdempotencyKeyReusedError, "idempotency_key_reused"),
        (502, _error("integrity_error"), errors.IntegrityError, "integrity_error"),
        (502, _error("kms_error"), errors.KeyServiceError, "kms_error"),
        (502, _error("storage_error"), errors.StorageError, "storage_error"),
        (500, b"<html>oops</html>", errors.InternalError, "internal_error"),
        (418, _error("brand_new_code"), errors.PiiVaultError, "brand_new_code"),
    ],
)
def test_given_an_error_answer_then_the_exception_is_typed_by_code(
    status: int, body: object, expected: type[errors.PiiVaultError], code: str
) -> None:
    transport = FakeTransport((status, {}, body))

    with pytest.raises(errors.PiiVaultError) as raised:
        _client(transport, retries={"total_max_attempts": 1}).delete_secret("acme", "s")

    assert type(raised.value) is expected
    assert (raised.value.status, raised.value.code) == (status, code)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing in the environment or on disk for botocore's credential chain to find."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8002", "http://localhost:8002", "http://[::1]:8002", "http://127.5.6.7:8002"]
)
def test_given_a_loopback_url_and_no_credentials_then_fixed_dummy_credentials_sign(
    no_credentials: None, url: str
) -> None:
    transport = FakeTransport(SECRET)

    Client(reader_url=url, transport=transport).get_secret("acme", "s")

    method, sent_url, headers, body, _ = transport.requests[0]
    assert f"Credential={client.LOCAL_ACCESS_KEY}/" in headers["Authorization"]
    assert "/us-east-1/execute-api/" in headers["Authorization"]
    assert verify(method, sent_url, body or b"", headers, client.LOCAL_SECRET_KEY)


@pytest.mark.parametrize(
    "url",
    ["https://r1.execute-api.eu-west-1.amazonaws.com/api", "http://localhost.example.com", "http://10.0.0.8:8002"],
)
def test_given_a_remote_url_and_no_credentials_then_nothing_is_sent(no_credentials: None, url: str) -> None:
    transport = FakeTransport()

    with pytest.raises(errors.CredentialsError):
        Client(reader_url=url, region="eu-west-1", transport=transport).get_secret("acme", "s")

    assert transport.requests == []


def test_given_the_cli_then_a_create_gets_a_key_and_the_answer_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    transport = FakeTransport(
        (201, {"ETag": '"1"', "Location": "/customers/acme/people/x"}, {"id": "x"}), (404, {}, _error("not_found"))
    )
    vault = _client(transport)
    base = "https://w1.execute-api.eu-west-1.amazonaws.com/api/customers/acme"

    assert cli_main(["POST", f"{base}/people", "--data", '{"name": "Ada"}'], client=vault) == 0
    assert cli_main(["GET", f"{base}/people/x"], client=vault) == 1

    out, err = capsys.readouterr()
    assert "Idempotency-Key" in transport.requests[0][2] and "Idempotency-Key" not in transport.requests[1][2]
    assert transport.requests[0][3] == b'{"name":"Ada"}'
    assert "HTTP 201" in err and 'ETag: "1"' in err and "HTTP 404" in err
    assert '"code": "not_found"' in out


@pytest.mark.parametrize(
    ("method", "path", "keyed"),
    [
        ("POST", "/api/customers/acme/people", True),
        ("PUT", "/customers/acme/secrets/hook", True),
        ("PUT", "/customers/acme/people/x", False),
        ("POST", "/customers/acme/people/search", False),
        ("PUT", "/customers/acme/secrets/hook/versions", False),
    ],
)
def test_given_a_route_then_only_creates_and_secret_puts_get_an_automatic_key(
    method: str, path: str, keyed: bool
) -> None:
    from pii_vault_client.cli import wants_idempotency_key

    assert wants_idempotency_key(method, f"http://127.0.0.1:8001{path}") is keyed
