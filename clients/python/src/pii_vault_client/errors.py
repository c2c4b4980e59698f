"""One exception per pii-vault error code, all under ``PiiVaultError``.

The service answers errors as ``{"code": ..., "message": ...}``; ``error_from`` picks the
class by ``code`` (falling back to the HTTP status for answers without one, such as an
API Gateway without the project's gateway responses), so callers can catch exactly what
they handle::

    try:
        vault.get_person("acme", person_id)
    except NotFoundError:
        ...
"""

from __future__ import annotations

import json
from typing import Any


class PiiVaultError(Exception):
    """Base class. ``status`` is the HTTP status (0 when no answer arrived)."""

    code = "pii_vault_error"
    status_hint = 0

    def __init__(
        self, message: str, *, status: int = 0, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or type(self).code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}" if self.status else f"{self.code}: {self.message}"


class TransportError(PiiVaultError):
    """No HTTP answer: connection refused or reset, DNS, TLS, or the timeout passed."""

    code = "transport_error"


class WaiterError(PiiVaultError):
    """A waiter gave up: the work was still under way when its time ran out (``last``: where it stood)."""

    code = "waiter_timeout"

    def __init__(self, message: str, last: Any) -> None:
        super().__init__(message)
        self.last = last


class CredentialsError(PiiVaultError):
    """No AWS credentials or no region to sign with."""

    code = "no_credentials"


class ValidationError(PiiVaultError):
    code = "validation_error"
    status_hint = 400


class MalformedJsonError(ValidationError):
    code = "malformed_json"


class PayloadTooLargeError(ValidationError):
    code = "payload_too_large"
    status_hint = 413


class UnsupportedMediaTypeError(ValidationError):
    code = "unsupported_media_type"
    status_hint = 415


class ForbiddenError(PiiVaultError):
    """A refusal API Gateway answers in the error shape (e.g. a malformed Authorization header).

    A caller the stage does not serve (unsigned, bad or expired signature, principal not
    on the allow-list) gets ``NotFoundError``, as for an unknown route: nobody learns
    from the answer which routes exist."""

    code = "forbidden"
    status_hint = 403


class NotFoundError(PiiVaultError):
    code = "not_found"
    status_hint = 404


class MethodNotAllowedError(PiiVaultError):
    code = "method_not_allowed"
    status_hint = 405


class PreconditionFailedError(PiiVaultError):
    """``If-Match`` named a version that is no longer the current one."""

    code = "precondition_failed"
    status_hint = 412


class ConflictError(PiiVaultError):
    code = "conflict"
    status_hint = 409


class RequestInProgressError(ConflictError):
    code = "request_in_progress"


class VersionLimitError(ConflictError):
    code = "version_limit"


class IdempotencyKeyReusedError(PiiVaultError):
    code = "idempotency_key_reused"
    status_hint = 422


class ThrottledError(PiiVaultError):
    code = "throttled"
    status_hint = 429


class ServiceUnavailableError(PiiVaultError):
    code = "service_unavailable"
    status_hint = 503


class IntegrityError(PiiVaultError):
    """Stored ciphertext failed authentication: the record was altered or moved."""

    code = "integrity_error"


class DependencyError(PiiVaultError):
    code = "dependency_error"
    status_hint = 502


class KeyServiceError(DependencyError):
    code = "kms_error"


class StorageError(DependencyError):
    code = "storage_error"


class InternalError(PiiVaultError):
    code = "internal_error"
    status_hint = 500


def _subclasses(cls: type[PiiVaultError]) -> list[type[PiiVaultError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


BY_CODE: dict[str, type[PiiVaultError]] = {cls.code: cls for cls in _subclasses(PiiVaultError)}
BY_STATUS: dict[int, type[PiiVaultError]] = {
    cls.status_hint: cls for cls in reversed(_subclasses(PiiVaultError)) if cls.status_hint
}
BY_STATUS.update({400: ValidationError, 409: ConflictError, 502: DependencyError})


def error_from(status: int, body: bytes, retry_after: float | None = None) -> PiiVaultError:
    """The exception for one error answer (``status`` >= 400)."""
    parsed: Any = None
    try:
        parsed = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        parsed = None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    message = parsed.get("message") if isinstance(parsed, dict) else None
    if not isinstance(message, str):
        message = f"HTTP {status}"
    cls = BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = BY_STATUS.get(status, PiiVaultError)
        code = code if isinstance(code, str) else cls.code if cls is not PiiVaultError else f"http_{status}"
    return cls(message, status=status, code=code, retry_after=retry_after)
