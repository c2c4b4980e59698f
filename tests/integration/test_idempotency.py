"""Idempotency-Key on POST people and PUT secrets, over moto and powertools' DynamoDB store."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from botocore.exceptions import ClientError

from chalicelib.support.errors import RequestInProgressError
from chalicelib.support.idempotency import IdempotentWrites, StoredAnswer
from tests.integration.conftest import REGION, Stack, body_of, send, stage_client
from tests.integration.test_api import PERSON, PLAINTEXTS
from tools.devstack import LOCAL_CALLER

# Keys as clients should make them: a random UUID or at least 22 base64url characters.
KEY_1 = "0b6f2d1e-7c4a-4f0e-9d8b-2a5c6e7f8a91"
KEY_2 = "5d3c1b2a-9e8f-4a7b-8c6d-1e2f3a4b5c6d"
KEY_SHARED = "Shared_key_across_tenants_4c1f"
KEY_ROTATE = "rotate-7-f3Jd81KqL0vXzP2a"
KEY_FIX = "fix-me-8dJq3LzV0mWc9xTb1r"
KEY_THROTTLE = "8e1b6c44-0f5a-4d3e-a2b7-9c0d1e2f3a4b"
KEY_SCAN = "scan-me-Qw7Er9Ty2Ui4Op6As8"
KEY_STORE = "store-down-Zx1Cv3Bn5Mq7Wp9Ek"
KEY_BOTH = "same-key-both-callers-Hj4Kl6"


class LambdaContextStub:
    """What powertools reads from a Lambda context: the time left for the in-progress lock."""

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def people(stack: Stack) -> list[dict[str, Any]]:
    return [item for item in stack.scan() if item["sk"]["S"].startswith("P#")]


def idempotency_items(stack: Stack) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.dynamodb.scan(TableName=stack.resources["idempotency_table_name"])["Items"]
    return items


def test_given_a_retried_post_with_the_same_key_then_the_first_answer_and_one_person(stack: Stack) -> None:
    first = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_1})
    again = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_1})
    assert first.status_code == again.status_code == 201
    assert body_of(again) == body_of(first)
    assert again.headers["Location"] == first.headers["Location"] and again.headers["ETag"] == '"1"'
    assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    assert len(people(stack)) == 1
    assert stack.writer_kms.take() == ["Encrypt", "Encrypt"]  # one create: the full and the masked view's key


def test_given_the_same_key_with_another_body_then_422_and_nothing_new(stack: Stack) -> None:
    send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_2})
    other = send(
        stack.writer, "POST", "/customers/acme/people", {**PERSON, "name": "Other"}, **{"Idempotency-Key": KEY_2}
    )
    assert other.status_code == 422
    assert body_of(other)["code"] == "idempotency_key_reused" and "Idempotency-Key" in body_of(other)["message"]
    assert len(people(stack)) == 1


def test_given_the_same_key_for_two_tenants_then_two_independent_creates(stack: Stack) -> None:
    a = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_SHARED})
    b = send(stack.writer, "POST", "/customers/globex/people", PERSON, **{"Idempotency-Key": KEY_SHARED})
    assert a.status_code == b.status_code == 201 and body_of(a)["id"] != body_of(b)["id"]


def test_given_no_key_then_each_post_creates(stack: Stack) -> None:
    send(stack.writer, "POST", "/customers/acme/people", PERSON)
    send(stack.writer, "POST", "/customers/acme/people", PERSON)
    assert len(people(stack)) == 2 and idempotency_items(stack) == []


def test_given_a_retried_secret_put_with_the_same_key_then_one_version(stack: Stack) -> None:
    for _ in range(3):
        response = send(
            stack.writer,
            "PUT",
            "/customers/acme/secrets/hook",
            {"value": "whsec_once"},
            **{"Idempotency-Key": KEY_ROTATE},
        )
        assert response.status_code == 201 and body_of(response)["version"] == 1
    versions = body_of(send(stack.reader, "GET", "/customers/acme/secrets/hook/versions"))["versions"]
    assert [v["version"] for v in versions] == [1]
    assert send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": "whsec_twice"}).status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve", "Zq0+/9aB3cD4eF5gH6iJ7k=="])
def test_given_a_malformed_key_then_400_naming_the_header(stack: Stack, key: str) -> None:
    response = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": key})
    assert response.status_code == 400 and "Idempotency-Key" in body_of(response)["message"]
    assert people(stack) == []


def test_given_a_first_attempt_that_failed_then_the_key_is_free_for_a_corrected_retry(stack: Stack) -> None:
    bad = send(
        stack.writer, "POST", "/customers/acme/people", {**PERSON, "email": "nope"}, **{"Idempotency-Key": KEY_FIX}
    )
    assert bad.status_code == 400
    good = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_FIX})
    assert good.status_code == 201 and len(people(stack)) == 1


def test_given_a_kms_throttle_on_the_first_attempt_then_the_retry_writes(stack: Stack) -> None:
    def throttle(**_: object) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "x"}}, "Encrypt")

    kms = stack.writer_clients["kms"]
    kms.meta.events.register("before-call.kms.Encrypt", throttle)
    assert (
        send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_THROTTLE}).status_code
        == 429
    )
    kms.meta.events.unregister("before-call.kms.Encrypt", throttle)
    assert (
        send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_THROTTLE}).status_code
        == 201
    )
    assert len(people(stack)) == 1


def test_given_stored_idempotency_records_then_they_hold_no_plaintext(stack: Stack) -> None:
    send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_SCAN})
    send(
        stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": PLAINTEXTS[-1]}, **{"Idempotency-Key": KEY_SCAN}
    )
    raw = repr(idempotency_items(stack))
    # Two Powertools records, and a reference to each (erased with the person, the secret).
    assert len(idempotency_items(stack)) == 4
    assert sum(item["id"]["S"].startswith("ref#acme#person#") for item in idempotency_items(stack)) == 1
    assert sum(item["id"]["S"] == "ref#acme#secret#hook" for item in idempotency_items(stack)) == 1
    for value in (*PLAINTEXTS, KEY_SCAN):
        assert value not in raw


def test_given_a_request_still_in_progress_then_a_concurrent_retry_gets_409(stack: Stack) -> None:
    store = DynamoDBPersistenceLayer(
        table_name=stack.resources["idempotency_table_name"], boto3_client=stage_client("writer", "dynamodb")
    )
    writes = IdempotentWrites(store, ttl_seconds=60, key_prefix="test")
    seen: list[RequestInProgressError] = []
    context = LambdaContextStub()

    def any_id(_record_id: str) -> bool:
        return True

    def first_write() -> StoredAnswer:
        try:
            writes.run("scope", KEY_1, b"{}", lambda: StoredAnswer("x", 1, "t"), context, valid_id=any_id)
        except RequestInProgressError as exc:
            seen.append(exc)
        return StoredAnswer("first", 1, "2026-01-01T00:00:00.000Z")

    answer, replayed = writes.run("scope", KEY_1, b"{}", first_write, context, valid_id=any_id)
    assert (answer.id, replayed) == ("first", False)
    assert len(seen) == 1 and seen[0].code == "request_in_progress"


def test_given_the_store_fails_after_the_write_succeeded_then_the_write_is_answered_not_503(stack: Stack) -> None:
    calls = {"n": 0}

    def fail_saving_success(**_: object) -> None:
        calls["n"] += 1
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
            "UpdateItem",
        )

    ddb = stack.writer_clients["dynamodb"]
    # powertools records success with UpdateItem on its own table; the PII write is a PutItem.
    ddb.meta.events.register("before-call.dynamodb.UpdateItem", fail_saving_success)
    response = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_STORE})
    ddb.meta.events.unregister("before-call.dynamodb.UpdateItem", fail_saving_success)
    assert calls["n"] >= 1
    assert response.status_code == 201 and len(people(stack)) == 1


def test_given_two_signed_callers_with_the_same_key_then_each_gets_its_own_write(stack: Stack) -> None:
    import json as _json

    from chalicelib.stages.app import create_app
    from chalicelib.support.config import Settings
    from tests.integration.conftest import api_gateway_event

    writer = create_app(
        settings=Settings(
            "writer",
            region=REGION,
            allowed_callers=("arn:aws:iam::111122223333:role/app-a", "arn:aws:iam::111122223333:role/app-b"),
        ),
        kms_client=stage_client("writer", "kms"),
        dynamodb_client=stage_client("writer", "dynamodb"),
    )

    def post_as(principal: str) -> dict[str, Any]:
        event = api_gateway_event(
            "POST", "/customers/{customer_id}/people", "/customers/acme/people", {"customer_id": "acme"}
        )
        headers = {"content-type": "application/json", "idempotency-key": KEY_BOTH}
        event["headers"], event["multiValueHeaders"] = headers, {k: [v] for k, v in headers.items()}
        event["requestContext"]["identity"]["userArn"] = principal
        event["body"] = _json.dumps(PERSON)
        return writer(event, None)

    first = post_as("arn:aws:sts::111122223333:assumed-role/app-a/one")
    second = post_as("arn:aws:sts::111122223333:assumed-role/app-b/two")
    again = post_as("arn:aws:sts::111122223333:assumed-role/app-a/one")
    assert first["statusCode"] == second["statusCode"] == again["statusCode"] == 201
    assert _json.loads(first["body"])["id"] != _json.loads(second["body"])["id"]
    assert _json.loads(again["body"])["id"] == _json.loads(first["body"])["id"]
    assert len(people(stack)) == 2


# What powertools' DynamoDB store writes per key (persistence/base.py): the item id is
# "<key_prefix>#" + sha256(json(event key)), the validation attribute sha256(json(fingerprint)).
KEY_PREFIX = "pii-vault-writer"
SECRET_SCOPE = f"{LOCAL_CALLER}\nsecret.put:acme:hook"  # unsigned test calls run as the local caller
GUESSES = ("1", "k", "key", "hook", "rotate-1", "rotate-7", "req-1", "retry", "acme-hook-1", "")


def stored_id(scope: str, key: str) -> str:
    return f"{KEY_PREFIX}#" + hashlib.sha256(json.dumps(f"{scope}\n{key}").encode()).hexdigest()


def stored_validation(fingerprint: str) -> str:
    return hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()


def body_bytes(value: str) -> bytes:
    return json.dumps({"value": value}).encode()  # what send() puts on the wire


@pytest.mark.parametrize("key", ["rotate-7", "1", "acme-hook-1", "Zq0-_9aB3cD4eF5gH6iJ7"])
def test_given_a_guessable_key_then_400_and_the_idempotency_table_stays_empty(stack: Stack, key: str) -> None:
    # The attack: with "rotate-7" stored, an offline guesser found the key from the item id
    # (a hash of scope and key) and then confirmed guessed secret values against the
    # fingerprint. A key of fewer than 128 bits in form is now refused before anything is stored.
    path, body = "/customers/acme/secrets/hook", {"value": "whsec_guess_me"}
    response = send(stack.writer, "PUT", path, body, **{"Idempotency-Key": key})
    assert response.status_code == 400 and body_of(response)["code"] == "validation_error"
    assert "Idempotency-Key" in body_of(response)["message"]
    reference = send(stack.writer, "PUT", path, body, **{"Idempotency-Key": "!"})
    assert response.body == reference.body  # the key is not echoed
    assert idempotency_items(stack) == [] and stack.scan() == []


def test_given_a_random_key_then_a_reader_of_the_idempotency_table_cannot_confirm_a_guessed_secret(
    stack: Stack,
) -> None:
    key, value = "Kf8-2mQx_Vb7RtL0pZs4Nw", "whsec_guess_me_if_you_can"
    candidates = ("whsec_test", "whsec_live", value, "hunter2")
    put = send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": value}, **{"Idempotency-Key": key})
    assert put.status_code == 201
    [item] = [i for i in idempotency_items(stack) if not i["id"]["S"].startswith("ref#")]  # and its reference
    stored = item["validation"]["S"]

    # Control: whoever holds the key recomputes exactly what the table holds, so the model is right.
    fingerprint = hmac.new(f"{SECRET_SCOPE}\n{key}".encode(), body_bytes(value), hashlib.sha256).hexdigest()
    assert item["id"]["S"] == stored_id(SECRET_SCOPE, key) and stored == stored_validation(fingerprint)

    # The guesser holds the item and the scope, and guesses values and keys offline.
    assert all(item["id"]["S"] != stored_id(SECRET_SCOPE, guess) for guess in GUESSES)
    for candidate in candidates:
        body = body_bytes(candidate)
        attempts = [hashlib.sha256(body).hexdigest(), hmac.new(SECRET_SCOPE.encode(), body, hashlib.sha256).hexdigest()]
        for guess in GUESSES:
            attempts.append(hmac.new(guess.encode(), body, hashlib.sha256).hexdigest())
            attempts.append(hmac.new(f"{SECRET_SCOPE}\n{guess}".encode(), body, hashlib.sha256).hexdigest())
        assert all(stored != stored_validation(attempt) for attempt in attempts)
    assert value not in repr(item) and key not in repr(item)


# -- issue 21 E: replays are rebuilt from checked values, never copied from the table ------------

KEY_FORGE = "forge-Me-9aQ2wE4rT6yU8iO0pA"


def _stored_record(stack: Stack) -> dict[str, Any]:
    [item] = [i for i in idempotency_items(stack) if not i["id"]["S"].startswith("ref#")]
    return item


def _edit_data(stack: Stack, edit: object) -> None:
    item = _stored_record(stack)
    data = json.loads(item["data"]["S"])
    edited = edit(data) if callable(edit) else edit
    item["data"] = {"S": json.dumps(edited)}
    stack.dynamodb.put_item(TableName=stack.resources["idempotency_table_name"], Item=item)


def test_given_a_genuine_replay_then_status_body_and_headers_are_rebuilt_not_stored(stack: Stack) -> None:
    first = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_FORGE})
    stored = json.loads(_stored_record(stack)["data"]["S"])
    assert set(stored) == {"id", "version", "created_at", "mac"}  # no status, body or headers kept
    again = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_FORGE})
    assert (again.status_code, body_of(again)) == (201, body_of(first))
    assert again.headers["Location"] == first.headers["Location"] and again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: {**d, "id": "f" * 32},  # another person: the client's next PATCH would hit them
        lambda d: {**d, "version": d["version"] + 4},
        lambda d: {**d, "created_at": "2001-01-01T00:00:00.000Z"},
        lambda d: {**d, "id": "../../evil"},
        lambda d: {**d, "mac": "0" * 64},
        # The review's forgery in the shape stored before: another id, Location on another host, HTML.
        {
            "status": 201,
            "body": {"id": "f" * 32, "version": 1, "created_at": "2026-01-01T00:00:00.000Z"},
            "headers": {"Location": "https://evil.example/x", "Content-Type": "text/html", "Set-Cookie": "a=b"},
        },
    ],
    ids=["other-person", "version", "created-at", "bad-id", "mac", "old-shape-with-headers"],
)
def test_given_a_stored_answer_edited_in_its_table_then_the_retry_is_an_integrity_error_not_the_forgery(
    stack: Stack, edit: object
) -> None:
    send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_FORGE})
    _edit_data(stack, edit)
    again = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_FORGE})
    assert (again.status_code, body_of(again)["code"]) == (502, "integrity_error")
    assert "evil" not in repr(again.headers) and "Idempotent-Replayed" not in again.headers


def test_given_a_stored_answer_moved_to_another_tenants_key_then_it_does_not_verify(stack: Stack) -> None:
    """Each answer is bound to its scope (caller, route, tenant) and request: one copied under
    another request's record id answers nothing."""
    send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": KEY_FORGE})
    acme = _stored_record(stack)
    send(stack.writer, "POST", "/customers/globex/people", PERSON, **{"Idempotency-Key": KEY_FORGE})
    globex = next(i for i in idempotency_items(stack) if not i["id"]["S"].startswith("ref#") and i != acme)
    stack.dynamodb.put_item(TableName=stack.resources["idempotency_table_name"], Item={**globex, "data": acme["data"]})
    again = send(stack.writer, "POST", "/customers/globex/people", PERSON, **{"Idempotency-Key": KEY_FORGE})
    assert (again.status_code, body_of(again)["code"]) == (502, "integrity_error")


def test_given_put_secret_records_then_the_secrets_delete_and_the_tenants_offboarding_remove_them(
    stack: Stack,
) -> None:
    """Idempotency residue: PUT-secret records used to survive the secret's DELETE and offboarding."""
    from chalicelib.service.jobs import Control
    from chalicelib.service.offboard import OffboardRun
    from chalicelib.stages.wiring import Clients, build_offboarding
    from chalicelib.support.config import Settings

    for n, key in enumerate((KEY_1, KEY_2)):
        assert (
            send(
                stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": f"v{n}"}, **{"Idempotency-Key": key}
            ).status_code
            == 201
        )
    assert len(idempotency_items(stack)) == 3  # two records, one reference naming both
    assert send(stack.writer, "DELETE", "/customers/acme/secrets/hook").status_code == 204
    assert idempotency_items(stack) == []

    send(stack.writer, "PUT", "/customers/globex/secrets/hook", {"value": "v"}, **{"Idempotency-Key": KEY_1})
    assert len(idempotency_items(stack)) == 2
    clients = Clients.of(stage_client("offboard", "kms"), stage_client("offboard", "dynamodb"))
    offboarding = build_offboarding(Settings("offboard", region=REGION), clients)
    for segment in (0, 1):
        assert offboarding.run(OffboardRun("o", "globex", segment, 1), Control()).done
    assert idempotency_items(stack) == []
