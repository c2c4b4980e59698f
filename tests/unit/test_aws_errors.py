"""AWS error codes go to the log line only: never into a pii-vault error message (a response body)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ParamValidationError, ReadTimeoutError
from chalice import Response

from chalicelib.support.aws_errors import THROTTLE_CODES, UNAVAILABLE_CODES, cause_of, translate
from chalicelib.support.errors import KeyServiceError, StorageError, ThrottledError

OTHER_CODES = (
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "DisabledException",
    "KMSInvalidStateException",
    "NotFoundException",
    "InvalidKeyUsageException",
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "ValidationException",
    "ResourceNotFoundException",
    "ItemCollectionSizeLimitExceededException",
    "TransactionConflictException",
    "RequestLimitExceeded",
    "SomethingNewException",
)
CODES = sorted(THROTTLE_CODES | UNAVAILABLE_CODES | set(OTHER_CODES))


@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("service, dependency_error", [("kms", KeyServiceError), ("dynamodb", StorageError)])
def test_given_any_aws_error_code_then_the_message_omits_it_and_the_log_keeps_it(
    caplog: pytest.LogCaptureFixture, service: str, dependency_error: type, code: str, status: int
) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")
    with caplog.at_level(logging.WARNING, logger="chalicelib.support.aws_errors"):
        error = translate(exc, service, "Op", dependency_error, ("InvalidCiphertextException", "IncorrectKeyException"))
    assert code not in error.message and code not in str(error)
    assert "Exception" not in error.message
    assert code in caplog.text


@pytest.mark.parametrize("code", ["DisabledException", "KMSInvalidStateException", "KeyUnavailableException"])
def test_given_a_kms_key_state_refusal_then_it_is_key_unavailable_but_only_for_kms(code: str) -> None:
    from chalicelib.support.errors import KeyUnavailableError

    exc = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Op")
    assert isinstance(translate(exc, "kms", "Decrypt", KeyServiceError), KeyUnavailableError)
    assert translate(exc, "kms", "Decrypt", KeyServiceError).code == "key_unavailable"
    assert not isinstance(translate(exc, "dynamodb", "GetItem", StorageError), KeyUnavailableError)


def _client_error(code: str, status: int = 400, reasons: list[str] | None = None) -> ClientError:
    message = "The provided key element does not match: ada@example.org"  # AWS messages can echo values
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return ClientError(response, "Op")


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (_client_error("ConditionalCheckFailedException"), "condition_failed"),
        (_client_error("TransactionCanceledException", reasons=["None", "ConditionalCheckFailed"]), "condition_failed"),
        (_client_error("ProvisionedThroughputExceededException"), "throttled"),
        (_client_error("ThrottlingException"), "throttled"),
        (_client_error("TransactionCanceledException", reasons=["ThrottlingError", "None"]), "throttled"),
        (_client_error("TransactionConflictException"), "transaction_conflict"),
        (_client_error("TransactionInProgressException"), "transaction_conflict"),
        (
            _client_error("TransactionCanceledException", reasons=["TransactionConflict", "None"]),
            "transaction_conflict",
        ),
        (_client_error("ValidationException"), "validation"),
        (_client_error("TransactionCanceledException", reasons=["ValidationError"]), "validation"),
        (_client_error("IdempotentParameterMismatchException"), "validation"),
        (_client_error("AccessDeniedException"), "denied"),
        (_client_error("InternalServerError", 500), "unavailable"),
        (_client_error("SomethingNewException", 503), "unavailable"),
        (_client_error("SomethingNewException"), "unknown"),
        (ReadTimeoutError(endpoint_url="u"), "unavailable"),
        (ConnectionClosedError(endpoint_url="u"), "unavailable"),
        (ParamValidationError(report="r"), "validation"),
    ],
)
def test_given_a_failed_call_then_its_cause_category_is_named(exc: Exception, cause: str) -> None:
    assert cause_of(exc) == cause


def test_given_a_storage_error_at_the_edge_then_the_log_line_names_its_cause_and_no_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chalicelib.api.http import guarded

    exc = _client_error("TransactionCanceledException", reasons=["None", "ThrottlingError"])

    @guarded
    def view() -> Response:
        raise translate(exc, "dynamodb", "TransactWriteItems", StorageError) from exc

    with caplog.at_level(logging.WARNING):
        view()

    assert "dynamodb TransactWriteItems failed: TransactionCanceledException (throttled)" in caplog.text
    assert "request failed: storage_error (cause: throttled)" in caplog.text
    assert "ada@example.org" not in caplog.text  # the AWS message (which can echo values) is never logged


def test_given_an_error_nobody_categorised_then_its_cause_is_unknown() -> None:
    assert StorageError("x").cause == "unknown" and KeyServiceError("y").cause == "unknown"


class _CancellingClient:
    """A DynamoDB client whose every transaction DynamoDB cancels with these reasons."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons

    def transact_write_items(self, **_: object) -> None:
        raise _client_error("TransactionCanceledException", reasons=self.reasons)


@pytest.mark.parametrize(
    ("reasons", "error", "cause"),
    [
        (["None", "TransactionConflict"], StorageError, "transaction_conflict"),
        (["ThrottlingError", "None"], ThrottledError, "throttled"),
    ],
)
def test_given_an_erasure_the_adapter_sees_cancelled_then_the_error_names_its_cause(
    reasons: list[str], error: type[Exception], cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    from chalicelib.store.ledger import DynamoDbErasures

    erasures = DynamoDbErasures(_CancellingClient(reasons), table="t", ledger_table="l", idempotency_table="i")

    with caplog.at_level(logging.WARNING), pytest.raises(error) as refused:
        erasures.erase_person("acme", "0" * 32, None, "2026-01-01T00:00:00Z")

    assert getattr(refused.value, "cause", None) == cause
    assert f"dynamodb TransactWriteItems failed: TransactionCanceledException ({cause})" in caplog.text
    assert "ada@example.org" not in caplog.text
