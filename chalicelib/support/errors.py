"""One error hierarchy for pii-vault.

Every error carries a stable machine ``code`` and a human ``message`` that names
fields, ids and limits but never a submitted or stored value. The HTTP edge
(``chalicelib.api``) maps each class to a status; nothing below it knows HTTP.
"""

from __future__ import annotations


class PiiVaultError(Exception):
    """Base class. ``code`` is stable and documented; ``message`` never holds data."""

    code = "pii_vault_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConfigurationError(PiiVaultError):
    """The function was started with missing or invalid settings."""

    code = "configuration_error"


class ValidationError(PiiVaultError):
    """A request is malformed; ``field`` names the offending field (never its value)."""

    code = "validation_error"


class MalformedJsonError(ValidationError):
    code = "malformed_json"


class PayloadTooLargeError(ValidationError):
    code = "payload_too_large"


class UnsupportedMediaTypeError(ValidationError):
    code = "unsupported_media_type"


class ForbiddenError(PiiVaultError):
    """The authenticated caller is not on this stage's allow-list (or there is none)."""

    code = "forbidden"


class NotFoundError(PiiVaultError):
    code = "not_found"


class PreconditionFailedError(PiiVaultError):
    """``If-Match`` named a version that is not the current one."""

    code = "precondition_failed"


class ConflictError(PiiVaultError):
    code = "conflict"


class IdempotencyKeyReusedError(PiiVaultError):
    """An ``Idempotency-Key`` was sent again with a different request body."""

    code = "idempotency_key_reused"


class RequestInProgressError(ConflictError):
    """The first request with this ``Idempotency-Key`` has not finished yet."""

    code = "request_in_progress"


class VersionLimitError(ConflictError):
    """A secret reached its maximum number of versions."""

    code = "version_limit"


class IntegrityError(PiiVaultError):
    """Stored ciphertext failed authentication: it was altered, truncated or moved."""

    code = "integrity_error"


# The cause category of a DependencyError nobody categorised (chalicelib/support/aws_errors.py names the others).
UNKNOWN_CAUSE = "unknown"


class DependencyError(PiiVaultError):
    """An AWS dependency (KMS or DynamoDB) failed; the request had no effect.

    ``cause``: a category for the log line (condition_failed, throttled, ...; see
    ``chalicelib.support.aws_errors.cause_of``), never an AWS message or a value."""

    code = "dependency_error"

    def __init__(self, message: str, *, field: str | None = None, cause: str = UNKNOWN_CAUSE) -> None:
        super().__init__(message, field=field)
        self.cause = cause


class KeyServiceError(DependencyError):
    code = "kms_error"


class KeyUnavailableError(KeyServiceError):
    """The tenant's KMS key is disabled or pending deletion (a shredded tenant): answered
    as 502 ``key_unavailable``, not retried, never a 500 (docs/tenant-keys.md)."""

    code = "key_unavailable"


class StorageError(DependencyError):
    code = "storage_error"


class ServiceUnavailableError(DependencyError):
    """KMS or DynamoDB is unreachable, timed out or reported an internal failure."""

    code = "service_unavailable"


class ThrottledError(DependencyError):
    """KMS or DynamoDB throttled the request; the client should retry later."""

    code = "throttled"
