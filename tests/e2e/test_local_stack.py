"""Black-box tests over real HTTP against the local stack (see tests/e2e/conftest.py)."""

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import TIMEOUT, LocalStack, create_person, read_person
from tests.plaintext_guard import register
from tools import sample

# tools.sample: distinctive values (6+ characters) so that finding one in random ciphertext by chance
# is practically impossible.
PERSON = sample.person()
register(PERSON)  # the no-plaintext guard looks for these everywhere


def _put_secret(stack: LocalStack, customer_id: str, secret_id: str, value: str) -> dict[str, Any]:
    response = requests.put(
        f"{stack.writer_url}/customers/{customer_id}/secrets/{secret_id}", json={"value": value}, timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_given_person_created_on_writer_when_read_from_reader_then_all_fields_are_equal(
    local_stack: LocalStack, customer_id: str
) -> None:
    created = create_person(local_stack, customer_id)
    body = created.json()
    assert body["version"] == 1
    assert created.headers["Location"] == f"/customers/{customer_id}/people/{body['id']}"
    assert created.headers["ETag"] == '"1"'
    assert not set(sample.plaintexts(PERSON)) & set(map(str, body.values())), "the writer echoed PII"

    read = read_person(local_stack, customer_id, body["id"])

    assert read["id"] == body["id"]
    assert read["version"] == 1
    assert read["data"] == PERSON


def test_given_person_when_getting_it_from_writer_then_there_is_no_read_route(
    local_stack: LocalStack, customer_id: str
) -> None:
    person_id = create_person(local_stack, customer_id).json()["id"]

    response = requests.get(f"{local_stack.writer_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)
    listing = requests.get(f"{local_stack.writer_url}/customers/{customer_id}/people", timeout=TIMEOUT)

    for r in (response, listing):
        assert (r.status_code, r.json()["code"]) in ((404, "not_found"), (405, "method_not_allowed")), r.text
        assert not any(value in r.text for value in sample.plaintexts(PERSON))


def test_given_reader_when_writing_through_it_then_there_is_no_write_route(
    local_stack: LocalStack, customer_id: str
) -> None:
    base = f"{local_stack.reader_url}/customers/{customer_id}"

    attempts = [
        requests.post(f"{base}/people", json=PERSON, timeout=TIMEOUT),
        requests.put(f"{base}/people/{'0' * 32}", json=PERSON, timeout=TIMEOUT),
        requests.patch(f"{base}/people/{'0' * 32}", json={"name": "Mallory"}, timeout=TIMEOUT),
        requests.delete(f"{base}/people/{'0' * 32}", timeout=TIMEOUT),
        requests.put(f"{base}/secrets/token", json={"value": "x"}, timeout=TIMEOUT),
        requests.delete(f"{base}/secrets/token", timeout=TIMEOUT),
    ]

    assert [r.status_code for r in attempts] == [405, 405, 405, 405, 405, 405], [r.text for r in attempts]
    stored = local_stack.dynamodb.query(
        TableName=local_stack.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"C#{customer_id}"}},
    )
    assert stored["Items"] == []


def test_given_person_when_patching_email_then_reader_shows_new_email_and_other_fields_unchanged(
    local_stack: LocalStack, customer_id: str
) -> None:
    person_id = create_person(local_stack, customer_id).json()["id"]

    patched = requests.patch(
        f"{local_stack.writer_url}/customers/{customer_id}/people/{person_id}",
        json={"email": "p.quillfeather@example.net"},
        headers={"If-Match": '"1"'},
        timeout=TIMEOUT,
    )

    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    read = read_person(local_stack, customer_id, person_id)
    assert read["version"] == 2
    assert read["data"] == {**PERSON, "email": "p.quillfeather@example.net"}


def test_given_person_when_deleted_then_reader_answers_404(local_stack: LocalStack, customer_id: str) -> None:
    person_id = create_person(local_stack, customer_id).json()["id"]

    deleted = requests.delete(f"{local_stack.writer_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)

    assert deleted.status_code == 204
    gone = requests.get(f"{local_stack.reader_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"


def test_given_secret_put_twice_when_reading_then_latest_old_version_and_history_are_served(
    local_stack: LocalStack, customer_id: str
) -> None:
    url = f"{local_stack.reader_url}/customers/{customer_id}/secrets/api.token"
    assert _put_secret(local_stack, customer_id, "api.token", "first-secret-value")["version"] == 1
    assert _put_secret(local_stack, customer_id, "api.token", "second-secret-value")["version"] == 2

    latest = requests.get(url, timeout=TIMEOUT)
    first = requests.get(url, params={"version": "1"}, timeout=TIMEOUT)
    history = requests.get(f"{url}/versions", timeout=TIMEOUT)

    assert latest.status_code == first.status_code == history.status_code == 200
    assert (latest.json()["version"], latest.json()["value"]) == (2, "second-secret-value")
    assert (first.json()["version"], first.json()["value"]) == (1, "first-secret-value")
    assert history.json()["id"] == "api.token"
    assert sorted(v["version"] for v in history.json()["versions"]) == [1, 2]
    assert "secret-value" not in history.text


def _attribute_bytes(value: dict[str, Any]) -> Iterator[bytes]:
    """Every name and value inside a low-level DynamoDB AttributeValue, as bytes."""
    ((kind, inner),) = value.items()
    if kind == "S" or kind == "N":
        yield inner.encode()
    elif kind == "B":
        yield bytes(inner)
    elif kind in ("SS", "NS"):
        yield from (v.encode() for v in inner)
    elif kind == "BS":
        yield from (bytes(v) for v in inner)
    elif kind == "L":
        for v in inner:
            yield from _attribute_bytes(v)
    elif kind == "M":
        for k, v in inner.items():
            yield k.encode()
            yield from _attribute_bytes(v)


def test_given_writes_when_scanning_raw_table_then_no_plaintext_is_stored(
    local_stack: LocalStack, customer_id: str
) -> None:
    person_id = create_person(local_stack, customer_id).json()["id"]
    new_email = "scan.check.rotated@example.net"
    patched = requests.patch(
        f"{local_stack.writer_url}/customers/{customer_id}/people/{person_id}",
        json={"email": new_email},
        timeout=TIMEOUT,
    )
    assert patched.status_code == 200, patched.text
    secrets = ["correct-horse-battery-staple", "Tr0ub4dor&3-rotated"]
    for value in secrets:
        _put_secret(local_stack, customer_id, "db-password", value)
    assert read_person(local_stack, customer_id, person_id)["data"]["email"] == new_email  # written for real

    items = [
        item
        for page in local_stack.dynamodb.get_paginator("scan").paginate(TableName=local_stack.table_name)
        for item in page["Items"]
    ]

    assert any(item["pk"] == {"S": f"C#{customer_id}"} for item in items)
    stored = b"\x00".join(
        chunk for item in items for name, value in item.items() for chunk in (name.encode(), *_attribute_bytes(value))
    ).lower()
    plaintexts = [*sample.plaintexts(PERSON), new_email, *secrets]
    leaked = [p for p in plaintexts if p.lower().encode() in stored]
    assert leaked == []


@pytest.mark.parametrize("email", ["not-an-email-at-all", "philippa@@example.org"])
def test_given_invalid_email_when_creating_person_then_400_json_without_the_value(
    local_stack: LocalStack, customer_id: str, email: str
) -> None:
    response = requests.post(
        f"{local_stack.writer_url}/customers/{customer_id}/people", json={**PERSON, "email": email}, timeout=TIMEOUT
    )

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "validation_error"
    assert "email" in body["message"]
    assert email not in response.text
    assert not any(value in response.text for value in sample.plaintexts(PERSON))


def test_given_malformed_json_when_creating_person_then_400_malformed_json(
    local_stack: LocalStack, customer_id: str
) -> None:
    response = requests.post(
        f"{local_stack.writer_url}/customers/{customer_id}/people",
        data=b'{"name": "Philippa", ',
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert "Philippa" not in response.text


@pytest.mark.parametrize("stage", ["writer_url", "reader_url", "masked_url"])
def test_given_an_unknown_route_then_chalice_local_answers_json_404_like_the_deployed_gateway(
    local_stack: LocalStack, stage: str
) -> None:
    """Issue 24: not chalice's `403 {"message": "Missing Authentication Token"}`."""
    from chalicelib.api.gateway_responses import gateway_responses

    expected = gateway_responses()["MISSING_AUTHENTICATION_TOKEN"]
    base = getattr(local_stack, stage)
    for method, path in (
        ("GET", "/"),
        ("GET", "/no/such/route"),
        ("DELETE", "/customers/acme"),
        ("OPTIONS", "/customers/acme/people"),
    ):
        response = requests.request(method, base + path, timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (expected.status, expected.body), (method, path)
        assert {k: response.headers[k] for k in expected.all_headers()} == expected.all_headers()
