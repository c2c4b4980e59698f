"""Translate botocore failures into pii-vault errors, the same way for KMS and DynamoDB.

Retryable conditions become 429 (throttled) or 503 (unavailable, timed out) so clients
know to come back; everything else is a 502. Log lines carry the AWS error code only
(botocore messages can echo request parameters); error messages, which become
response bodies, carry neither the code nor the AWS message. Every translated error
carries a cause category (``cause_of``), which the edge's "request failed" line names,
so an operator tells contention (throttled, transaction_conflict, condition_failed)
from a bug (validation, unknown) without any value in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ParamValidationError
from botocore.exceptions import ConnectionError as BotoConnectionError

from chalicelib.support.errors import (
    UNKNOWN_CAUSE,
    ConflictError,
    DependencyError,
    IntegrityError,
    KeyUnavailableError,
    PiiVaultError,
    ServiceUnavailableError,
    ThrottledError,
)

logger = logging.getLogger(__name__)

THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "TooManyRequestsException",
    }
)
UNAVAILABLE_CODES = frozenset(
    {
        "KMSInternalException",
        "DependencyTimeoutException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)

# KMS refusals because of the key's state, not the request: a disabled key, a key pending
# deletion (crypto-shredding of an offboarded tenant), a key in an unusable custom key store.
KEY_UNAVAILABLE_CODES = frozenset({"DisabledException", "KMSInvalidStateException", "KeyUnavailableException"})


# Cause categories (the log line's words; never a value).
CONDITION_FAILED = "condition_failed"
THROTTLED = "throttled"
TRANSACTION_CONFLICT = "transaction_conflict"
VALIDATION = "validation"
UNAVAILABLE = "unavailable"  # timed out, connection refused or dropped, a 5xx
DENIED = "denied"  # IAM or the key policy said no
UNKNOWN = UNKNOWN_CAUSE

_CONDITION_CODES = frozenset({"ConditionalCheckFailedException", "ConditionalCheckFailed"})
_CONFLICT_CODES = frozenset({"TransactionConflictException", "TransactionInProgressException", "TransactionConflict"})
# A TransactWriteItems' per-item cancellation reasons that mean throttling.
THROTTLED_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
_VALIDATION_CODES = frozenset(
    {
        "ValidationException",
        "ValidationError",
        "SerializationException",
        "IdempotentParameterMismatchException",
        "InvalidParameterValue",
        "ItemCollectionSizeLimitExceededException",
    }
)
_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def cancellation_codes(exc: ClientError) -> list[str]:
    """A cancelled TransactWriteItems' reason codes, one per item ("None" for an item that was fine)."""
    return [str(reason.get("Code")) for reason in exc.response.get("CancellationReasons") or []]


def cause_of(exc: BaseException) -> str:
    """The cause category of a failed AWS call; a cancelled transaction by its items' reasons."""
    if isinstance(exc, ClientError):
        codes = {error_code(exc), *cancellation_codes(exc)}
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        for category, known in (
            (THROTTLED, THROTTLE_CODES | THROTTLED_REASONS),
            (TRANSACTION_CONFLICT, _CONFLICT_CODES),
            (CONDITION_FAILED, _CONDITION_CODES),
            (VALIDATION, _VALIDATION_CODES),
            (DENIED, _DENIED_CODES),
            (UNAVAILABLE, UNAVAILABLE_CODES),
        ):
            if codes & known:
                return category
        return UNAVAILABLE if status >= 500 else UNKNOWN
    if isinstance(exc, ParamValidationError):
        return VALIDATION
    if isinstance(exc, (HTTPClientError, BotoConnectionError)):
        return UNAVAILABLE
    return UNKNOWN


def refused(exc: ClientError, service: str, operation: str, error: PiiVaultError) -> PiiVaultError:
    """``error``, for a refusal its caller judged itself (e.g. a create's condition), with
    the cause category set and logged as ``translate`` does (to be raised ``from exc``)."""
    cause = cause_of(exc)
    logger.warning("%s %s failed: %s (%s)", service, operation, error_code(exc), cause)
    if isinstance(error, DependencyError):
        error.cause = cause
    return error


def translate(
    exc: Exception,
    service: str,
    operation: str,
    dependency_error: type[DependencyError],
    integrity_codes: Iterable[str] = (),
) -> PiiVaultError:
    """The pii-vault error for a failed AWS call (to be raised ``from exc``)."""
    error = _translated(exc, service, operation, dependency_error, integrity_codes)
    if isinstance(error, DependencyError):
        error.cause = cause_of(exc)
    return error


def _translated(
    exc: Exception,
    service: str,
    operation: str,
    dependency_error: type[DependencyError],
    integrity_codes: Iterable[str],
) -> PiiVaultError:
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        logger.warning("%s %s failed: %s (%s)", service, operation, code, cause_of(exc))
        if code == "TransactionConflictException":
            return ConflictError(f"a concurrent {service} transaction holds the item; retry later")
        if service == "kms" and code in KEY_UNAVAILABLE_CODES:
            return KeyUnavailableError("the tenant's KMS key is disabled or pending deletion")
        if code in integrity_codes:
            return IntegrityError("a wrapped data key failed authentication (wrong tenant, key or bytes)")
        if code in THROTTLE_CODES:
            return ThrottledError(f"{service} is throttling requests; retry later")
        if code in UNAVAILABLE_CODES or status >= 500:
            return ServiceUnavailableError(f"{service} is unavailable ({operation}); retry later")
        return dependency_error(f"{service} refused {operation}")
    logger.warning("%s %s failed: %s (%s)", service, operation, type(exc).__name__, cause_of(exc))
    if isinstance(exc, (HTTPClientError, BotoConnectionError)):  # timeouts, refused or dropped connections
        return ServiceUnavailableError(f"{service} did not answer ({operation}); retry later")
    if isinstance(exc, BotoCoreError):
        return dependency_error(f"{service} client failed ({operation})")
    raise TypeError("translate() takes botocore exceptions only") from exc


@contextmanager
def translated(
    service: str,
    operation: str,
    dependency_error: type[DependencyError],
    *,
    integrity_codes: Iterable[str] = (),
    raise_for: Mapping[str, Callable[[ClientError], Exception]] | None = None,
) -> Iterator[None]:
    """The one place a botocore failure becomes a pii-vault error.

    ``raise_for``: AWS error codes the caller gives a meaning of its own (a failed
    condition, a cancelled transaction, a blob under another key): the code's factory
    builds the exception raised instead (from the ClientError, which it may inspect).
    """
    try:
        yield
    except ClientError as exc:
        special = (raise_for or {}).get(error_code(exc))
        if special is not None:
            raise special(exc) from exc
        raise translate(exc, service, operation, dependency_error, integrity_codes) from exc
    except BotoCoreError as exc:
        raise translate(exc, service, operation, dependency_error) from exc
