"""Translate botocore failures into pii-vault errors, the same way for KMS and DynamoDB.

Retryable conditions become 429 (throttled) or 503 (unavailable, timed out) so clients
know to come back; everything else is a 502. Log lines carry the AWS error code only
(botocore messages can echo request parameters); error messages, which become
response bodies, carry neither the code nor the AWS message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from chalicelib.support.errors import (
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


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def translate(
    exc: Exception,
    service: str,
    operation: str,
    dependency_error: type[DependencyError],
    integrity_codes: Iterable[str] = (),
) -> PiiVaultError:
    """The pii-vault error for a failed AWS call (to be raised ``from exc``)."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        logger.warning("%s %s failed: %s", service, operation, code)
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
    logger.warning("%s %s failed: %s", service, operation, type(exc).__name__)
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
