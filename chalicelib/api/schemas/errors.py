"""The error answers: one body (``shapes.Error``) and, per status, the codes it may carry.

A status's codes are derived: every error class of ``chalicelib.support.errors`` whose
status (``contract.status_for``) it is. Each code is described once below; a code
without a description stops the documents from being built. Subclasses defined
elsewhere (``store.records``' version conflicts) reuse their base's code.
"""

from __future__ import annotations

from collections.abc import Iterator

from chalicelib.api import contract, shapes
from chalicelib.api.schemas.model import Object, Ref, Response, Schema, String
from chalicelib.api.schemas.shaped import of_shape
from chalicelib.support import errors

_NO_EFFECT = "the request had no effect"
# What each code means to a client; the status that carries it is the contract's.
CODES = {
    "validation_error": "a field is invalid; the message names it (never its value)",
    "malformed_json": "the body is not one JSON object in UTF-8 (or repeats a key, holds NaN, or nests too deep)",
    "payload_too_large": "the body, or a secret's value, is over its limit",
    "unsupported_media_type": "send application/json",
    "forbidden": "the caller is not on this stage's allow-list",
    "not_found": "no such record",
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
    "throttled": f"KMS or DynamoDB throttled the request; {_NO_EFFECT}",
}
# API Gateway answers some requests itself, before the function (deployed stages only).
GATEWAY_NOTES = {
    403: "API Gateway itself answers 403 with a body of `message` only when the SigV4 signature is missing "
    "or invalid, or there is no such route (deployed stages only)."
}
GATEWAY_STATUS = 403


def _classes(cls: type[errors.PiiVaultError]) -> Iterator[type[errors.PiiVaultError]]:
    """``cls`` and its subclasses of the errors module, depth first in definition order."""
    if cls.__module__ == errors.__name__:
        yield cls
    for sub in cls.__subclasses__():
        yield from _classes(sub)


def codes_of(status: int) -> tuple[str, ...]:
    """The error codes an answer of ``status`` may carry."""
    found = (cls.code for cls in _classes(errors.PiiVaultError) if contract.status_for(cls) == status)
    return tuple(dict.fromkeys(found))


def statuses() -> list[int]:
    """Every error status a view may answer (``contract.ERROR_STATUSES``)."""
    return sorted({status for _, status in contract.ERROR_STATUSES})


def description(status: int) -> str:
    codes = codes_of(status)
    undescribed = [code for code in codes if code not in CODES]
    if undescribed:
        raise LookupError(f"error code {', '.join(undescribed)} has no description in chalicelib.api.schemas.errors")
    text = "; ".join(f"`{code}`: {CODES[code]}" for code in codes) + "."
    if status in contract.RETRY_AFTER_STATUSES:
        text += " Retry after Retry-After seconds."
    return " ".join((text, GATEWAY_NOTES.get(status, ""))).strip()


def error_schemas() -> dict[str, Schema]:
    return {
        "Error": of_shape(
            shapes.Error,
            "Every error. The message names fields and limits, never a submitted or stored value.",
            code=String(pattern="^[a-z][a-z0-9_]*$", description="Stable machine code (listed with each status)."),
            message=String(description="For people: what was wrong, without any value."),
        ),
        "GatewayError": Object(
            description="Answered by API Gateway itself (SigV4 missing or invalid, no such route); the "
            "function's own 403 (`forbidden`) is an Error.",
            properties={"message": String()},
            required=("message",),
            additional=None,
        ),
    }


def response_name(status: int) -> str:
    return "Gateway403" if status == GATEWAY_STATUS else f"Error{status}"


def error_responses() -> dict[str, Response]:
    """The error responses by component name, one per status."""
    out: dict[str, Response] = {}
    for status in statuses():
        retry = ("Retry-After",) if status in contract.RETRY_AFTER_STATUSES else ()
        schema = Ref("GatewayError" if status == GATEWAY_STATUS else "Error")
        out[response_name(status)] = Response(description(status), schema, retry)
    return out
