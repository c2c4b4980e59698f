"""Injected AWS faults: every failure gets an honest status, and a failed write changes nothing.

Faults are raised from botocore ``before-call`` event hooks on the app's own clients,
exactly where a throttle, an outage or a timeout would surface after botocore's retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from tests.integration.conftest import Stack, body_of, send
from tests.integration.test_api import PERSON, create


def client_error(code: str, status: int = 400) -> Callable[[str], Exception]:
    def build(operation: str) -> Exception:
        error: Exception = ClientError(
            {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
        )
        return error

    return build


def read_timeout(operation: str) -> Exception:
    error: Exception = ReadTimeoutError(endpoint_url="https://injected.invalid")
    return error


def connect_timeout(operation: str) -> Exception:
    error: Exception = ConnectTimeoutError(endpoint_url="https://injected.invalid")
    return error


class Faults:
    """Raise ``fault`` on the next ``times`` calls of ``operation`` made by ``client``."""

    def __init__(self) -> None:
        self._clients: list[tuple[Any, str, Callable[..., None]]] = []

    def inject(
        self, client: Any, operation: str, fault: Callable[[str], Exception], times: int = 1_000, skip: int = 0
    ) -> None:
        state = {"skip": skip, "times": times}
        service = client.meta.service_model.service_name

        def hook(**_: Any) -> None:
            if state["skip"] > 0:
                state["skip"] -= 1
                return
            if state["times"] > 0:
                state["times"] -= 1
                raise fault(operation)

        event = f"before-call.{service}.{operation}"
        client.meta.events.register(event, hook)
        self._clients.append((client, event, hook))

    def clear(self) -> None:
        for client, event, hook in self._clients:
            client.meta.events.unregister(event, hook)
        self._clients.clear()


@pytest.fixture
def faults() -> Any:
    injected = Faults()
    yield injected
    injected.clear()


WRITE_FAULTS = [
    ("kms", "Encrypt", client_error("ThrottlingException"), 429, "throttled"),
    ("kms", "Encrypt", client_error("KMSInternalException", 500), 503, "service_unavailable"),
    ("kms", "Encrypt", client_error("DependencyTimeoutException", 503), 503, "service_unavailable"),
    ("kms", "Encrypt", read_timeout, 503, "service_unavailable"),
    ("kms", "Encrypt", client_error("AccessDeniedException"), 502, "kms_error"),
    ("kms", "Encrypt", client_error("DisabledException"), 502, "key_unavailable"),
    ("dynamodb", "PutItem", client_error("ProvisionedThroughputExceededException"), 429, "throttled"),
    ("dynamodb", "PutItem", client_error("InternalServerError", 500), 503, "service_unavailable"),
    ("dynamodb", "PutItem", connect_timeout, 503, "service_unavailable"),
    ("dynamodb", "PutItem", client_error("ValidationException"), 502, "storage_error"),
]


@pytest.mark.parametrize("service, operation, fault, status, code", WRITE_FAULTS)
def test_given_a_fault_when_creating_a_person_then_honest_status_and_nothing_stored(
    stack: Stack, faults: Faults, service: str, operation: str, fault: Any, status: int, code: str
) -> None:
    faults.inject(stack.writer_clients[service], operation, fault)
    response = send(stack.writer, "POST", "/customers/acme/people", PERSON)
    assert response.status_code == status and body_of(response)["code"] == code
    assert ("Retry-After" in response.headers) == (status in (429, 503))
    assert stack.scan() == []


PATCH = ("PATCH", {"email": "changed@example.org"})
REPLACE = ("PUT", {**PERSON, "name": "Changed"})
DELETE = ("DELETE", None)
CHANGE_FAULTS = [
    (*request, service, operation, fault, status)
    for request in (PATCH, REPLACE)
    for service, operation, fault, status in (
        ("kms", "Encrypt", client_error("ThrottlingException"), 429),
        ("kms", "Encrypt", client_error("KMSInternalException", 500), 503),
        ("dynamodb", "UpdateItem", client_error("InternalServerError", 500), 503),
        ("dynamodb", "UpdateItem", read_timeout, 503),
    )
] + [
    # A person's DELETE is one transaction with its erasure-ledger entry.
    (*DELETE, "dynamodb", "TransactWriteItems", client_error("ProvisionedThroughputExceededException"), 429),
    (*DELETE, "dynamodb", "TransactWriteItems", connect_timeout, 503),
]


@pytest.mark.parametrize("method, body, service, operation, fault, status", CHANGE_FAULTS)
def test_given_a_fault_when_changing_a_person_then_the_stored_item_is_exactly_as_before(
    stack: Stack, faults: Faults, method: str, body: Any, service: str, operation: str, fault: Any, status: int
) -> None:
    person_id = create(stack)
    before = stack.scan()
    faults.inject(stack.writer_clients[service], operation, fault)
    response = send(stack.writer, method, f"/customers/acme/people/{person_id}", body)
    assert response.status_code == status and "Retry-After" in response.headers
    assert stack.scan() == before
    faults.clear()
    assert body_of(send(stack.reader, "GET", f"/customers/acme/people/{person_id}"))["data"] == PERSON


@pytest.mark.parametrize(
    "fault, status",
    [
        (client_error("ProvisionedThroughputExceededException"), 429),
        (client_error("InternalServerError", 500), 503),
        (read_timeout, 503),
    ],
)
def test_given_a_fault_when_adding_a_secret_version_then_no_version_and_no_counter_move(
    stack: Stack, faults: Faults, fault: Any, status: int
) -> None:
    send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": "whsec_first_value"})
    before = stack.scan()
    faults.inject(stack.writer_clients["dynamodb"], "TransactWriteItems", fault)
    response = send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": "whsec_second_value"})
    assert response.status_code == status and "Retry-After" in response.headers
    assert stack.scan() == before
    faults.clear()
    assert body_of(send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": "whsec_third"}))["version"] == 2


def test_given_throttled_transactions_then_429(stack: Stack, faults: Faults) -> None:
    def cancelled(operation: str) -> Exception:
        error: Exception = ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "injected"},
                "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}],
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            operation,
        )
        return error

    faults.inject(stack.writer_clients["dynamodb"], "TransactWriteItems", cancelled)
    response = send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": "whsec_value"})
    assert response.status_code == 429 and stack.scan() == []


@pytest.mark.parametrize(
    "service, operation, fault, status",
    [
        ("kms", "Decrypt", client_error("ThrottlingException"), 429),
        ("kms", "Decrypt", client_error("KMSInternalException", 500), 503),
        ("kms", "Decrypt", client_error("AccessDeniedException"), 502),
        ("dynamodb", "GetItem", read_timeout, 503),
        ("dynamodb", "GetItem", client_error("ProvisionedThroughputExceededException"), 429),
    ],
)
def test_given_a_fault_when_reading_then_honest_status_and_no_plaintext(
    stack: Stack, faults: Faults, service: str, operation: str, fault: Any, status: int
) -> None:
    person_id = create(stack)
    faults.inject(stack.reader_clients[service], operation, fault)
    response = send(stack.reader, "GET", f"/customers/acme/people/{person_id}")
    assert response.status_code == status and set(body_of(response)) == {"code", "message"}
    assert PERSON["email"] not in response.body.decode()


def test_given_a_fault_midway_through_deleting_many_versions_then_the_secret_stays_gone_and_a_retry_finishes(
    stack: Stack, faults: Faults
) -> None:
    for number in range(1, 121):
        send(stack.writer, "PUT", "/customers/acme/secrets/many", {"value": f"value-{number}"})
    faults.inject(stack.writer_clients["dynamodb"], "BatchWriteItem", client_error("InternalServerError", 500), skip=2)
    response = send(stack.writer, "DELETE", "/customers/acme/secrets/many")
    assert response.status_code == 503
    # The delete had begun: no version, older or newer, is served as the secret any more.
    assert send(stack.reader, "GET", "/customers/acme/secrets/many").status_code == 404
    assert send(stack.reader, "GET", "/customers/acme/secrets/many?version=120").status_code == 404
    faults.clear()
    assert send(stack.writer, "DELETE", "/customers/acme/secrets/many").status_code == 204
    assert stack.scan() == []


def test_given_a_delete_racing_a_secret_transaction_then_409_with_retry_after(stack: Stack, faults: Faults) -> None:
    send(stack.writer, "PUT", "/customers/acme/secrets/busy", {"value": "whsec_value"})
    faults.inject(stack.writer_clients["dynamodb"], "UpdateItem", client_error("TransactionConflictException"))
    response = send(stack.writer, "DELETE", "/customers/acme/secrets/busy")
    assert response.status_code == 409 and response.headers["Retry-After"]
    faults.clear()
    assert send(stack.writer, "DELETE", "/customers/acme/secrets/busy").status_code == 204
