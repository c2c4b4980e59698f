"""The error answers: one body (``shapes.Error``, built by ``contract.error_body``) and, per
status, the codes it may carry.

A status's codes are derived from the two places that answer errors: the functions (every
error class of ``chalicelib.support.errors`` whose status ``contract.status_for`` gives,
but those answered as something else) and API Gateway (``gateway_responses``). Each code is
described once below; a code without a description stops the documents from being built.
Subclasses defined elsewhere (``store.records``' version conflicts) reuse their base's code.
"""

from __future__ import annotations

from collections.abc import Iterator

from chalicelib.api import contract, gateway_responses
from chalicelib.api.schemas.model import Ref, Response, Schema, String
from chalicelib.api.schemas.shaped import of_view
from chalicelib.support import errors

_NO_EFFECT = "the request had no effect"
# What each code means to a client; the status that carries it is the contract's.
CODES = {
    "validation_error": "a field is invalid; the message names it (never its value)",
    "malformed_json": "the body is not one JSON object in UTF-8 (or repeats a key, holds NaN, or nests too deep)",
    "payload_too_large": "the body, or a secret's value, is over its limit",
    "unsupported_media_type": "send application/json",
    "request_refused": "API Gateway refused the request before any function ran (deployed stages only), "
    "e.g. a malformed Authorization header",
    "not_found": "no such record; or no such route, or a caller the stage does not serve (a missing, bad or "
    "expired signature, or a principal not on the allow-list): one answer for both",
    "precondition_failed": "If-Match names another version than the current one",
    "conflict": "a concurrent write won, or the secret is being deleted",
    "request_in_progress": "the first request with this Idempotency-Key is still running",
    "version_limit": "the secret has its maximum number of versions; delete it to start again",
    "idempotency_key_reused": "the Idempotency-Key was already used with a different request body",
    "integrity_error": "stored ciphertext failed authentication (altered, truncated or moved)",
    "dependency_error": f"KMS or DynamoDB refused; {_NO_EFFECT}",
    "kms_error": f"KMS refused; {_NO_EFFECT}",
    "key_unavailable": f"the tenant's key is disabled or scheduled for deletion (a shredded tenant); {_NO_EFFECT}",
    "storage_error": f"DynamoDB refused; {_NO_EFFECT}",
    "service_unavailable": f"KMS or DynamoDB timed out or failed; {_NO_EFFECT}",
    "throttled": f"KMS, DynamoDB or API Gateway throttled the request; {_NO_EFFECT}",
}
# Error classes the functions never answer with their own code: a caller the stage does not
# serve is answered as an unknown route (``callers.caller_gate``: 404 ``not_found``) and only
# audited as ``forbidden``.
ANSWERED_AS_NOT_FOUND: tuple[type[errors.PiiVaultError], ...] = (errors.ForbiddenError,)
# API Gateway's own refusals keep its status (``DEFAULT_4XX`` sets none): the contract
# documents them under 403 (``contract.COMMON_ERROR_STATUSES``).
GATEWAY_REFUSAL_STATUS = 403


def _classes(cls: type[errors.PiiVaultError]) -> Iterator[type[errors.PiiVaultError]]:
    """``cls`` and its subclasses of the errors module, depth first in definition order."""
    if cls.__module__ == errors.__name__ and not issubclass(cls, ANSWERED_AS_NOT_FOUND):
        yield cls
    for sub in cls.__subclasses__():
        yield from _classes(sub)


def _gateway_codes(status: int) -> Iterator[str]:
    for kind, answer in gateway_responses.gateway_responses().items():
        refusal = answer.status is None and kind.endswith("4XX") and status == GATEWAY_REFUSAL_STATUS
        if answer.status == status or refusal:
            yield answer.body["code"]


def codes_of(status: int) -> tuple[str, ...]:
    """The error codes an answer of ``status`` may carry: the functions' then API Gateway's."""
    functions = (cls.code for cls in _classes(errors.PiiVaultError) if contract.status_for(cls) == status)
    return tuple(dict.fromkeys((*functions, *_gateway_codes(status))))


def statuses() -> list[int]:
    """Every error status an operation may answer."""
    return sorted({*(status for _, status in contract.ERROR_STATUSES), *contract.COMMON_ERROR_STATUSES})


def description(status: int) -> str:
    codes = codes_of(status)
    undescribed = [code for code in codes if code not in CODES]
    if undescribed or not codes:
        missing = ", ".join(undescribed) or f"of status {status}: none"
        raise LookupError(f"error code {missing} has no description in chalicelib.api.schemas.errors")
    lines = [f"`{code}`: {CODES[code]}." for code in codes]
    text = lines[0] if len(lines) == 1 else "\n".join(["The `code` is one of:", "", *(f"- {line}" for line in lines)])
    return f"{text}\n\nRetry after Retry-After seconds." if status in contract.RETRY_AFTER_STATUSES else text


def error_schemas() -> dict[str, Schema]:
    return {
        "Error": of_view(
            contract.error_body,
            "Every error, whether a function or API Gateway answers it. The message names fields and limits, "
            "never a submitted or stored value.",
            code=String(pattern="^[a-z][a-z0-9_]*$", description="Stable machine code (listed with each status)."),
            message=String(description="For people: what was wrong, without any value."),
        ),
    }


def response_name(status: int) -> str:
    return f"Error{status}"


def error_responses() -> dict[str, Response]:
    """The error responses by component name, one per status."""
    return {
        response_name(status): Response(
            description(status),
            Ref("Error"),
            ("Retry-After",) if status in contract.RETRY_AFTER_STATUSES else (),
        )
        for status in statuses()
    }
