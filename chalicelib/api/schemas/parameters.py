"""Parameters (path ids, the contract's query parameters, request headers) and response
headers, from the rules that parse or produce them (``validation``, ``contract``,
``idempotency``)."""

from __future__ import annotations

from chalicelib.api import contract
from chalicelib.api.schemas.fields import ID_DESCRIPTIONS, identifier
from chalicelib.api.schemas.model import Array, Header, Integer, Parameter, Schema, String, full_match
from chalicelib.domain import validation
from chalicelib.support import idempotency


def query_schema(param: contract.QueryParam) -> Schema:
    """The schema of a query parameter, by the rule its ``parse`` applies."""
    if isinstance(param, contract.IntParam):
        return Integer(minimum=param.minimum, maximum=param.maximum, default=param.default)
    if isinstance(param, contract.FieldsParam):
        return Array(String(enum=validation.PERSON_FIELDS), min_items=1)
    if isinstance(param, contract.IdsParam):
        return Array(identifier("person_id"), min_items=1, max_items=param.max_items)
    if isinstance(param, contract.TokenParam):
        return String(format="page-token", min_length=1)
    raise TypeError(f"no schema for a query parameter of type {type(param).__name__}")


def parameters() -> dict[str, Parameter]:
    """Every parameter, by name: path ids, the query parameters of every contract row,
    the request headers."""
    out = {
        name: Parameter(name, "path", ID_DESCRIPTIONS[name], identifier(name), required=True)
        for name in validation.ID_PATTERNS
    }
    rows = [*contract.OPERATIONS.values(), *(op for ops in contract.STAGE_OPERATIONS.values() for op in ops.values())]
    for param in (param for op in rows for param in op.query):
        documented = Parameter(param.name, "query", param.description, query_schema(param))
        if out.setdefault(param.name, documented) != documented:
            raise LookupError(f"two query parameters named {param.name} differ")
    out[contract.IF_MATCH] = Parameter(
        contract.IF_MATCH,
        "header",
        'One strong ETag of the current version (`"3"`), or `*`; a mismatch is 412.',
        String(pattern=full_match(f"({contract.ETAG.pattern}|\\*)")),
    )
    out[contract.IDEMPOTENCY_KEY] = Parameter(
        contract.IDEMPOTENCY_KEY,
        "header",
        "Retry-safe writes: a repeat with the same key and body within 24 hours replays the "
        "first answer (status, body, headers, plus Idempotent-Replayed: true); the same key "
        "with a different body is 422; while the first request runs, 409. "
        f"A random UUID, or {idempotency.MIN_KEY_CHARS} to {idempotency.MAX_KEY_CHARS} base64url characters.",
        String(
            min_length=idempotency.MIN_KEY_CHARS,
            max_length=idempotency.MAX_KEY_CHARS,
            pattern=full_match(idempotency.KEY.pattern),
        ),
    )
    return out


_LOCATION = f"{contract.STAGE_PREFIX.pattern}/customers/{validation.ID_PATTERNS['customer_id']}/people/"


def headers() -> dict[str, Header]:
    """The response headers, by name."""
    return {
        "ETag": Header(
            'The record\'s version as a strong ETag, e.g. `"3"`; send it back in If-Match.',
            String(pattern=full_match(contract.ETAG.pattern)),
        ),
        "Location": Header(
            "Path of the new person (behind the API Gateway stage, e.g. /api, when deployed): "
            "PUT/PATCH/DELETE it on this endpoint, GET it on the reader's.",
            String(pattern=full_match(_LOCATION + validation.ID_PATTERNS["person_id"])),
        ),
        "Retry-After": Header(
            "Seconds to wait before retrying.",
            String(pattern="^[0-9]+$"),
        ),
        "Idempotent-Replayed": Header(
            "Present (`true`) when this is the stored answer to an earlier request with the same Idempotency-Key.",
            String(enum=("true",)),
            required=False,
        ),
    }
