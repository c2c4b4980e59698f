"""AWS error codes go to the log line only: never into a pii-vault error message (a response body)."""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError

from chalicelib.support.aws_errors import THROTTLE_CODES, UNAVAILABLE_CODES, translate
from chalicelib.support.errors import KeyServiceError, StorageError

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
