"""Every answer of both stages says Cache-Control: no-store, and no body names an AWS error code."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.support.aws_errors import THROTTLE_CODES, UNAVAILABLE_CODES
from tests.integration.conftest import Stack, body_of, send
from tests.integration.test_api import PERSON, create
from tests.integration.test_faults import Faults, client_error, faults  # noqa: F401 - the fixture

AWS_CODES = sorted(
    THROTTLE_CODES
    | UNAVAILABLE_CODES
    | {
        "AccessDeniedException",
        "DisabledException",
        "KMSInvalidStateException",
        "ValidationException",
        "ResourceNotFoundException",
        "InvalidCiphertextException",
        "TransactionConflictException",
    }
)


def _no_store(response: Any) -> None:
    assert response.headers.get("Cache-Control") == "no-store", (response.status_code, response.headers)


def test_given_successful_answers_of_both_stages_then_each_is_no_store(stack: Stack) -> None:
    created = send(stack.writer, "POST", "/customers/acme/people", PERSON)
    person_id = body_of(created)["id"]
    answers = [
        created,
        send(stack.reader, "GET", f"/customers/acme/people/{person_id}"),
        send(stack.reader, "GET", f"/customers/acme/people?ids={person_id}"),
        send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"name": "Other"}),
        send(stack.writer, "PUT", f"/customers/acme/people/{person_id}", PERSON),
        send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": "whsec_cache_me_not"}),
        send(stack.reader, "GET", "/customers/acme/secrets/hook"),
        send(stack.reader, "GET", "/customers/acme/secrets/hook/versions"),
        send(stack.writer, "DELETE", "/customers/acme/secrets/hook"),
        send(stack.writer, "DELETE", f"/customers/acme/people/{person_id}"),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200, 201, 200, 200, 204, 204]
    for answer in answers:
        _no_store(answer)


def test_given_a_replayed_idempotent_write_then_no_store(stack: Stack) -> None:
    key = "replay-no-store-4Jd8sKq2Lz0x"
    send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": key})
    again = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": key})
    assert again.headers.get("Idempotent-Replayed") == "true"
    _no_store(again)


def test_given_client_errors_of_both_stages_then_each_is_no_store(stack: Stack) -> None:
    person_id = create(stack)
    answers = {
        400: send(stack.writer, "POST", "/customers/acme/people", {**PERSON, "email": "nope"}),
        404: send(stack.reader, "GET", "/customers/acme/people/" + "0" * 32),
        405: send(stack.reader, "DELETE", f"/customers/acme/people/{person_id}"),
        412: send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"name": "X"}, **{"If-Match": '"9"'}),
        413: send(stack.writer, "POST", "/customers/acme/people", {"name": "x" * 20_000}),
        415: send(stack.writer, "POST", "/customers/acme/people", "x", **{"Content-Type": "text/plain"}),
        422: _reused(stack),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, (status, answer.body)
        _no_store(answer)


def _reused(stack: Stack) -> Any:
    key = "reused-no-store-7Hq2Wm9Zx4Lc"
    send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": key})
    return send(stack.writer, "POST", "/customers/acme/people", {**PERSON, "name": "Y"}, **{"Idempotency-Key": key})


def test_given_an_unexpected_exception_then_the_500_is_no_store(
    stack: Stack,
    faults: Faults,  # noqa: F811 - the imported fixture
) -> None:
    faults.inject(stack.writer_clients["kms"], "Encrypt", lambda _op: RuntimeError("boom"))
    response = send(stack.writer, "POST", "/customers/acme/people", PERSON)
    assert response.status_code == 500
    _no_store(response)


@pytest.mark.parametrize("code, status", [(code, 400) for code in AWS_CODES] + [("InternalServerError", 500)])
def test_given_an_aws_error_on_a_write_then_the_body_names_no_aws_code_but_the_log_does(
    stack: Stack,
    faults: Faults,  # noqa: F811 - the imported fixture
    caplog: pytest.LogCaptureFixture,
    code: str,
    status: int,
) -> None:
    faults.inject(stack.writer_clients["kms"], "Encrypt", client_error(code, status))
    with caplog.at_level(logging.WARNING):
        response = send(stack.writer, "POST", "/customers/acme/people", PERSON)
    assert response.status_code in (409, 429, 502, 503)
    assert code not in response.body.decode() and "Exception" not in response.body.decode()
    assert code in caplog.text
    _no_store(response)


@pytest.mark.parametrize(
    "service, operation, code, status",
    [
        ("kms", "Decrypt", "AccessDeniedException", 400),
        ("kms", "Decrypt", "ThrottlingException", 400),
        ("kms", "Decrypt", "KMSInvalidStateException", 400),
        ("dynamodb", "GetItem", "ProvisionedThroughputExceededException", 400),
        ("dynamodb", "GetItem", "ResourceNotFoundException", 400),
        ("dynamodb", "GetItem", "AccessDeniedException", 400),
        ("dynamodb", "GetItem", "InternalServerError", 500),
    ],
)
def test_given_an_aws_error_on_a_read_then_the_body_names_no_aws_code(
    stack: Stack,
    faults: Faults,  # noqa: F811 - the imported fixture
    service: str,
    operation: str,
    code: str,
    status: int,
) -> None:
    person_id = create(stack)
    faults.inject(stack.reader_clients[service], operation, client_error(code, status))
    response = send(stack.reader, "GET", f"/customers/acme/people/{person_id}")
    assert response.status_code >= 429 and code not in response.body.decode()
    _no_store(response)


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationException", "ThrottlingException"])
def test_given_an_aws_error_on_a_secret_transaction_then_the_body_names_no_aws_code(
    stack: Stack,
    faults: Faults,  # noqa: F811 - the imported fixture
    code: str,
) -> None:
    faults.inject(stack.writer_clients["dynamodb"], "TransactWriteItems", client_error(code))
    response = send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": "whsec_x"})
    assert response.status_code >= 429 and code not in response.body.decode()
    _no_store(response)


def test_given_an_aws_error_in_the_idempotency_store_then_the_body_names_no_aws_code(
    stack: Stack,
    faults: Faults,  # noqa: F811 - the imported fixture
) -> None:
    def denied(operation: str) -> Exception:
        error: Exception = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "m"}}, operation)
        return error

    faults.inject(stack.writer_clients["dynamodb"], "PutItem", denied)
    key = "store-denied-9Kx2Lq7Zm4Wb"
    response = send(stack.writer, "POST", "/customers/acme/people", PERSON, **{"Idempotency-Key": key})
    assert response.status_code == 503 and "AccessDenied" not in response.body.decode()
    _no_store(response)
