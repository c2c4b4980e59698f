"""Both stages in one process over moto: routes, KMS call counts, storage, errors, logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.integration.conftest import Stack, body_of, send
from tests.plaintext_guard import register
from tools.sample import person, plaintexts

PERSON = person()
SECRET = "whsec_Zm9vYmFyYmF6cXV4cXV1eA"
PLAINTEXTS = (*plaintexts(PERSON), SECRET)
register(PERSON, PLAINTEXTS)  # the no-plaintext guard looks for these everywhere


def create(stack: Stack, customer: str = "acme", person: dict[str, Any] | None = None) -> str:
    response = send(stack.writer, "POST", f"/customers/{customer}/people", person or PERSON)
    assert response.status_code == 201, response.body
    person_id: str = body_of(response)["id"]
    return person_id


def test_given_a_person_when_posted_then_201_with_location_etag_and_no_plaintext(stack: Stack) -> None:
    response = send(stack.writer, "POST", "/customers/acme/people", PERSON)
    body = body_of(response)
    assert response.status_code == 201
    assert set(body) == {"id", "version", "created_at"} and body["version"] == 1
    assert response.headers["Location"] == f"/customers/acme/people/{body['id']}"
    assert response.headers["ETag"] == '"1"'


def test_given_a_created_person_when_read_from_the_reader_then_all_fields_round_trip(stack: Stack) -> None:
    person_id = create(stack)
    response = send(stack.reader, "GET", f"/customers/acme/people/{person_id}")
    assert response.status_code == 200
    assert body_of(response)["data"] == PERSON
    assert response.headers["ETag"] == '"1"'


def test_given_writes_and_reads_then_one_kms_call_per_record_each_way_and_never_the_wrong_one(stack: Stack) -> None:
    person_id = create(stack)
    # A person write wraps two data keys: the full view's and the masked view's (context view=masked).
    assert stack.writer_kms.take() == ["Encrypt", "Encrypt"]
    send(stack.reader, "GET", f"/customers/acme/people/{person_id}")
    assert stack.reader_kms.take() == ["Decrypt"]
    send(stack.writer, "PUT", "/customers/acme/secrets/stripe", {"value": SECRET})
    assert stack.writer_kms.take() == ["Encrypt"]
    send(stack.reader, "GET", "/customers/acme/secrets/stripe")
    assert stack.reader_kms.take() == ["Decrypt"]


def test_given_each_role_then_it_only_uses_its_own_dynamodb_and_kms_actions(stack: Stack) -> None:
    person_id = create(stack)
    send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"name": "M."})
    send(stack.writer, "PUT", f"/customers/acme/people/{person_id}", PERSON)
    send(stack.writer, "PUT", "/customers/acme/secrets/s1", {"value": SECRET})
    send(stack.reader, "GET", f"/customers/acme/people/{person_id}")
    send(stack.reader, "GET", "/customers/acme/people")
    send(stack.reader, "GET", f"/customers/acme/people?ids={person_id}")
    send(stack.reader, "GET", "/customers/acme/secrets/s1")
    send(stack.reader, "GET", "/customers/acme/secrets/s1/versions")
    send(stack.writer, "DELETE", "/customers/acme/secrets/s1")
    send(stack.writer, "DELETE", f"/customers/acme/people/{person_id}")
    assert set(stack.writer_kms.take()) == {"Encrypt"}
    assert set(stack.reader_kms.take()) == {"Decrypt"}
    # IAM authorises each action inside TransactWriteItems as the PutItem/UpdateItem/DeleteItem it is.
    assert set(stack.writer_ddb.take()) <= {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }
    assert set(stack.reader_ddb.take()) <= {"GetItem", "Query", "BatchGetItem"}


def test_given_stored_people_and_secrets_when_the_table_is_scanned_then_no_plaintext(stack: Stack) -> None:
    person_id = create(stack)
    send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"email": "second.mirabelle@example.org"})
    send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": SECRET})
    raw = repr(stack.scan()).encode("utf-8", "backslashreplace")
    items = stack.scan()
    assert len(items) == 3  # person, secret head, secret version
    for value in (*PLAINTEXTS, "second.mirabelle"):
        assert value.encode() not in raw
        for item in items:
            for attribute in item.values():
                blob = attribute.get("B", b"") or attribute.get("S", "").encode()
                assert value.encode() not in blob


def test_given_a_secret_of_64_kib_when_stored_then_it_round_trips_far_beyond_kms_4_kb(stack: Stack) -> None:
    value = ("0123456789abcdef" * 4096)[: 64 * 1024]
    response = send(stack.writer, "PUT", "/customers/acme/secrets/big", {"value": value})
    assert response.status_code == 201 and body_of(response)["version"] == 1
    assert body_of(send(stack.reader, "GET", "/customers/acme/secrets/big"))["value"] == value


def test_given_a_secret_over_64_kib_when_put_then_413_and_nothing_stored(stack: Stack) -> None:
    response = send(stack.writer, "PUT", "/customers/acme/secrets/big", {"value": "x" * (64 * 1024 + 1)})
    assert response.status_code == 413 and body_of(response)["code"] == "payload_too_large"
    assert send(stack.reader, "GET", "/customers/acme/secrets/big").status_code == 404


def test_given_secret_versions_when_read_then_latest_older_and_metadata(stack: Stack) -> None:
    for value in ("v-one", "v-two", "v-three"):
        assert send(stack.writer, "PUT", "/customers/acme/secrets/api-key", {"value": value}).status_code == 201
    assert body_of(send(stack.reader, "GET", "/customers/acme/secrets/api-key"))["value"] == "v-three"
    older = body_of(send(stack.reader, "GET", "/customers/acme/secrets/api-key?version=1"))
    assert (older["version"], older["value"]) == (1, "v-one")
    versions = body_of(send(stack.reader, "GET", "/customers/acme/secrets/api-key/versions"))
    assert [v["version"] for v in versions["versions"]] == [1, 2, 3]
    assert "value" not in str(versions) and "v-one" not in str(versions)
    assert send(stack.reader, "GET", "/customers/acme/secrets/api-key?version=9").status_code == 404


def test_given_a_deleted_secret_then_every_version_is_gone(stack: Stack) -> None:
    for value in ("a1", "a2"):
        send(stack.writer, "PUT", "/customers/acme/secrets/gone", {"value": value})
    assert send(stack.writer, "DELETE", "/customers/acme/secrets/gone").status_code == 204
    assert stack.scan() == []
    assert send(stack.reader, "GET", "/customers/acme/secrets/gone?version=1").status_code == 404
    assert send(stack.writer, "DELETE", "/customers/acme/secrets/gone").status_code == 404


def test_given_a_patch_then_other_fields_are_not_decrypted_and_the_read_sees_both(stack: Stack) -> None:
    person_id = create(stack)
    stack.writer_kms.take()
    response = send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"email": "m2@example.org"})
    assert response.status_code == 200 and body_of(response)["version"] == 2
    assert response.headers["ETag"] == '"2"'
    assert stack.writer_kms.take() == ["Encrypt", "Encrypt"]  # the full and the masked view's data key
    data = body_of(send(stack.reader, "GET", f"/customers/acme/people/{person_id}"))["data"]
    assert data == {**PERSON, "email": "m2@example.org"}


def test_given_fields_param_when_reading_then_only_those_fields_are_returned(stack: Stack) -> None:
    person_id = create(stack)
    body = body_of(send(stack.reader, "GET", f"/customers/acme/people/{person_id}?fields=email,name"))
    assert body["data"] == {"email": PERSON["email"], "name": PERSON["name"]}


def test_given_if_match_when_replacing_then_stale_is_412_and_current_succeeds(stack: Stack) -> None:
    person_id = create(stack)
    path = f"/customers/acme/people/{person_id}"
    assert send(stack.writer, "PUT", path, PERSON, **{"If-Match": '"1"'}).status_code == 200
    stale = send(stack.writer, "PUT", path, {**PERSON, "name": "Lost"}, **{"If-Match": '"1"'})
    assert stale.status_code == 412 and body_of(stale)["code"] == "precondition_failed"
    assert body_of(send(stack.reader, "GET", path))["data"]["name"] == PERSON["name"]
    assert send(stack.writer, "DELETE", path, **{"If-Match": '"1"'}).status_code == 412
    assert send(stack.writer, "DELETE", path, **{"If-Match": '"2"'}).status_code == 204
    assert send(stack.reader, "GET", path).status_code == 404


def test_given_a_missing_person_when_written_then_404(stack: Stack) -> None:
    path = "/customers/acme/people/" + "e" * 32
    for method, body in (("PUT", PERSON), ("PATCH", {"name": "X"}), ("DELETE", None)):
        response = send(stack.writer, method, path, body)
        assert response.status_code == 404 and body_of(response)["code"] == "not_found"
    assert stack.scan() == []


def test_given_many_people_when_listed_then_pages_cover_everyone_once_and_tenants_stay_apart(stack: Stack) -> None:
    ids = {create(stack) for _ in range(5)}
    create(stack, customer="globex")
    seen, token = [], None
    while True:
        query = "?limit=2" + (f"&next={token}" if token else "")
        page = body_of(send(stack.reader, "GET", f"/customers/acme/people{query}"))
        seen += [item["id"] for item in page["items"]]
        assert all(item["data"] == PERSON for item in page["items"])
        token = page["next"]
        if not token:
            break
    assert sorted(seen) == sorted(ids)


def test_given_a_page_token_of_another_shape_when_listing_then_400_naming_next(stack: Stack) -> None:
    response = send(stack.reader, "GET", "/customers/acme/people?next=not-a-token")
    assert response.status_code == 400 and "next" in body_of(response)["message"]


def _token(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("stage", ["reader", "masked"])
@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000,  # recursed in the JSON parser: RecursionError, a 500 with a traceback
        b'{"after": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"after": "' + b"a" * 32 + b'", "x": 1}',
        b'{"after": "' + b"a" * 10_000 + b'"}',
        b'["after"]',
        b"\xff\xfe",
    ],
    ids=["nested", "nested-value", "extra-key", "long", "list", "not-utf8"],
)
def test_given_a_hostile_page_token_when_listing_then_400_naming_next_on_each_reading_stage(
    stack: Stack, stage: str, raw: bytes
) -> None:
    response = send(getattr(stack, stage), "GET", f"/customers/acme/people?next={_token(raw)}")
    assert response.status_code == 400, response.body
    assert body_of(response) == {"code": "validation_error", "message": "next is not a valid page token"}


BAD_REQUESTS = [
    ("POST", "/customers/acme/people", {**PERSON, "email": "Mirabelle@@bad"}, 400, "email"),
    ("POST", "/customers/acme/people", {**PERSON, "dob": "2999-01-01"}, 400, "dob"),
    ("POST", "/customers/acme/people", {**PERSON, "dob": "23/04/1987"}, 400, "dob"),
    ("POST", "/customers/acme/people", {**PERSON, "name": ""}, 400, "name"),
    ("POST", "/customers/acme/people", {**PERSON, "surname": "Q" * 201}, 400, "surname"),
    ("POST", "/customers/acme/people", {**PERSON, "nickname": "Mira"}, 400, "nickname"),
    ("POST", "/customers/acme/people", {**PERSON, "name": ["Mirabelle"]}, 400, "name"),
    (
        "POST",
        "/customers/acme/people",
        {**PERSON, "address": {**PERSON["address"], "country": "Canada"}},
        400,
        "address.country",
    ),
    ("POST", "/customers/acme/people", '{"name": "Mirabelle",', 400, "body"),
    ("POST", "/customers/acme/people", b"\xff\xfe", 400, "body"),
    ("POST", "/customers/ac me/people", PERSON, 400, "customer_id"),
    ("PATCH", "/customers/acme/people/NOT-AN-ID", {"name": "Mirabelle"}, 400, "person_id"),
    ("PATCH", "/customers/acme/people/" + "a" * 32, {}, 400, "body"),
    ("PUT", "/customers/acme/secrets/bad%23id", {"value": SECRET}, 400, "secret_id"),
    ("PUT", "/customers/acme/secrets/ok", {"value": 42}, 400, "value"),
    ("PUT", "/customers/acme/secrets/ok", {"value": SECRET, "ttl": 5}, 400, "ttl"),
]


@pytest.mark.parametrize("method, path, body, status, field", BAD_REQUESTS)
def test_given_bad_input_when_written_then_4xx_json_naming_the_field_without_the_value(
    stack: Stack, method: str, path: str, body: object, status: int, field: str
) -> None:
    response = send(stack.writer, method, path, body)
    payload = body_of(response)
    assert response.status_code == status
    assert set(payload) == {"code", "message"} and field in payload["message"]
    for value in (*PLAINTEXTS, "Mirabelle@@bad", "Canada", "Mira"):
        assert value not in response.body.decode()
    assert stack.scan() == []


@pytest.mark.parametrize(
    "path, status",
    [
        ("/customers/acme/people/0123?fields=ssn", 400),
        ("/customers/acme/people/" + "a" * 32 + "?fields=ssn", 400),
        ("/customers/acme/people?limit=1000", 400),
        ("/customers/acme/people?colour=red", 400),
        ("/customers/acme/secrets/x?version=zero", 400),
        ("/customers/acme/people/" + "a" * 32, 404),
        ("/customers/acme/secrets/nothing", 404),
        ("/customers/acme/secrets/nothing/versions", 404),
    ],
)
def test_given_bad_or_missing_reads_then_json_errors(stack: Stack, path: str, status: int) -> None:
    response = send(stack.reader, "GET", path)
    assert response.status_code == status and set(body_of(response)) == {"code", "message"}


def test_given_a_non_json_content_type_when_posting_then_415_json(stack: Stack) -> None:
    response = send(stack.writer, "POST", "/customers/acme/people", "name=Mirabelle", **{"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert body_of(response)["code"] == "unsupported_media_type"


def test_given_the_writer_when_asked_to_read_then_405_and_the_reader_has_no_write_route(stack: Stack) -> None:
    person_id = create(stack)
    response = send(stack.writer, "GET", f"/customers/acme/people/{person_id}")
    assert response.status_code == 405 and "Mirabelle" not in response.body.decode()
    assert body_of(response)["code"] == "method_not_allowed"
    for method, path in (
        ("POST", "/customers/acme/people"),
        ("DELETE", f"/customers/acme/people/{person_id}"),
        ("PUT", "/customers/acme/secrets/x"),
    ):
        assert send(stack.reader, method, path, PERSON).status_code == 405


def test_given_the_whole_flow_then_no_plaintext_in_any_log_record(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    person_id = create(stack)
    send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"surname": "Quenneville-Roy"})
    send(stack.reader, "GET", f"/customers/acme/people/{person_id}")
    send(stack.writer, "POST", "/customers/acme/people", {**PERSON, "email": "Mirabelle@@bad"})
    send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": SECRET})
    send(stack.reader, "GET", "/customers/acme/secrets/hook")
    assert any("person.read" in r.getMessage() for r in caplog.records)
    text = "\n".join(r.getMessage() for r in caplog.records)
    for value in (*PLAINTEXTS, "Mirabelle@@bad"):
        assert value not in text
