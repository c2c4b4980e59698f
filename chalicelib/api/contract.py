"""The HTTP contract of the API stages, stated once.

Limits, statuses and, per route (path + method), the query parameters, headers, body
schema and body size limit. The blueprints read this table when they turn a request
into typed values; ``tools/openapi.py`` derives the OpenAPI documents from it by walking
the routes ``create_app(role)`` registers, with the schemas of ``chalicelib.api.schemas``
(which derive from this module; never the other way). Nothing here imports Chalice or
the service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.domain import validation
from chalicelib.support import errors, idempotency

if TYPE_CHECKING:
    from chalicelib.api import shapes

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100  # people per page, and ids per multi-get
MAX_VERSION_DIGITS = 9  # record and secret versions, ETags
MAX_VERSION = 10**MAX_VERSION_DIGITS - 1
PERSON_BODY_MAX_BYTES = 16 * 1024
# A 64 KiB value may need up to 6 bytes of JSON per byte (\u00XX escapes) plus framing.
SECRET_BODY_MAX_BYTES = 6 * validation.MAX_SECRET_BYTES + 1024

PEOPLE = "/customers/{customer_id}/people"
PEOPLE_SEARCH = "/customers/{customer_id}/people/search"
# An e-mail is at most 320 characters, but 16 KiB like a person body: a body nested
# deeper than the JSON parser allows is then always within the size limit (a 400).
SEARCH_BODY_MAX_BYTES = 16 * 1024
PERSON = "/customers/{customer_id}/people/{person_id}"
SECRET = "/customers/{customer_id}/secrets/{secret_id}"  # noqa: S105 - a route, not a credential
SECRET_VERSIONS = "/customers/{customer_id}/secrets/{secret_id}/versions"  # noqa: S105 - a route

# Error class -> HTTP status, first match wins (subclasses before their bases).
ERROR_STATUSES: tuple[tuple[type[errors.PiiVaultError], int], ...] = (
    (errors.PayloadTooLargeError, 413),
    (errors.UnsupportedMediaTypeError, 415),
    (errors.ValidationError, 400),
    (errors.ForbiddenError, 403),
    (errors.NotFoundError, 404),
    (errors.PreconditionFailedError, 412),
    (errors.ConflictError, 409),
    (errors.IdempotencyKeyReusedError, 422),
    (errors.ThrottledError, 429),
    (errors.ServiceUnavailableError, 503),
    (errors.IntegrityError, 502),
    (errors.DependencyError, 502),
)
# 409 is always contention (a concurrent writer, a request still in progress; version
# mismatches are 412), 429/503 a dependency's limit or outage: all worth retrying shortly.
RETRY_AFTER_STATUSES = (409, 429, 503)
RETRY_AFTER_SECONDS = 1
# Every route can answer these (bad input; 404 for a caller the stage does not serve, as for
# an unknown route: gateway_responses.py; API Gateway's remaining 403s; KMS/DynamoDB trouble).
COMMON_ERROR_STATUSES = (400, 403, 404, 429, 502, 503)
# Every answer, errors included, is kept by no cache: bodies carry PII and secrets.
NO_STORE = {"Cache-Control": "no-store"}


def error_body(code: str, message: str) -> shapes.Error:
    """The one JSON error document: a stable ``code`` and a ``message`` that quotes no value."""
    return {"code": code, "message": message}


ETAG = re.compile(rf'"[1-9][0-9]{{0,{MAX_VERSION_DIGITS - 1}}}"')  # a strong ETag: the version, quoted
IF_MATCH = "If-Match"
IDEMPOTENCY_KEY = idempotency.HEADER  # its rule: idempotency.KEY

# The API Gateway stage in front of the paths when deployed (``/api``); none under `chalice local`.
STAGE_PREFIX = re.compile(r"(/[A-Za-z0-9._-]{1,128})?")


def _split(raw: str) -> list[str]:
    """``a, b,a`` -> ['a', 'b']: comma-separated, trimmed, first occurrence kept."""
    return list(dict.fromkeys(part.strip() for part in raw.split(",")))


@dataclass(frozen=True)
class IntParam:
    """A positive integer query parameter (``?limit=10``)."""

    name: str
    description: str
    maximum: int
    default: int | None = None
    minimum: int = 1

    def parse(self, raw: str) -> int:
        if not re.fullmatch(rf"[0-9]{{1,{MAX_VERSION_DIGITS}}}", raw) or not self.minimum <= int(raw) <= self.maximum:
            raise errors.ValidationError(
                f"{self.name} must be an integer from {self.minimum} to {self.maximum}", field=self.name
            )
        return int(raw)


@dataclass(frozen=True)
class FieldsParam:
    """``?fields=email,name`` -> ('email', 'name'): the person fields to decrypt."""

    name: str
    description: str

    def parse(self, raw: str) -> tuple[str, ...]:
        names = tuple(_split(raw))
        if any(name not in validation.PERSON_FIELDS for name in names):
            raise errors.ValidationError(
                f"{self.name} may only name {', '.join(validation.PERSON_FIELDS)}", field=self.name
            )
        return names


@dataclass(frozen=True)
class IdsParam:
    """``?ids=a,b`` -> distinct person ids, order kept, at most ``max_items``."""

    name: str
    description: str
    max_items: int

    def parse(self, raw: str) -> list[str]:
        ids = _split(raw)
        if not raw.strip() or len(ids) > self.max_items:
            raise errors.ValidationError(f"{self.name} must list 1 to {self.max_items} person ids", field=self.name)
        if not all(re.fullmatch(validation.ID_PATTERNS["person_id"], person_id) for person_id in ids):
            raise errors.ValidationError(
                f"{self.name} must be person ids of 32 lowercase hex characters", field=self.name
            )
        return ids


@dataclass(frozen=True)
class TokenParam:
    """An opaque token the API issued (``?next=``); the store decodes and checks it."""

    name: str
    description: str

    def parse(self, raw: str) -> str:
        if not raw:
            raise errors.ValidationError(f"{self.name} is not a valid page token", field=self.name)
        return raw


QueryParam = IntParam | FieldsParam | IdsParam | TokenParam

LIMIT = IntParam("limit", "People per page.", MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
NEXT = TokenParam("next", "The `next` token of the previous page, as returned.")
FIELDS = FieldsParam("fields", "Decrypt only these fields (comma-separated).")
IDS = IdsParam(
    "ids", f"Multi-get: up to {MAX_PAGE_SIZE} person ids, comma-separated; not with limit or next.", MAX_PAGE_SIZE
)
VERSION = IntParam("version", "A secret version; absent = the latest.", MAX_VERSION)


@dataclass(frozen=True)
class Operation:
    """One route: what it reads from the request and what it may answer."""

    summary: str
    ok: int
    ok_description: str
    ok_schema: str | None = None
    ok_headers: tuple[str, ...] = ()
    query: tuple[QueryParam, ...] = ()
    headers: tuple[str, ...] = ()  # request headers it reads: If-Match, Idempotency-Key
    body: str | None = None  # schema name of the JSON body
    max_body_bytes: int = 0
    errors: tuple[int, ...] = ()
    # A second success: 202 with this schema and Retry-After, for work that continues
    # over several requests (the DELETE of a secret with many versions).
    accepted_schema: str | None = None

    @property
    def statuses(self) -> list[int]:
        """Every error status this route may answer."""
        return sorted({*COMMON_ERROR_STATUSES, *self.errors})


_WRITE = (413, 415)  # a body: too large, not JSON

OPERATIONS: dict[tuple[str, str], Operation] = {
    (PEOPLE, "POST"): Operation(
        "Create a person; every field is encrypted before it is stored.",
        201,
        "Created. No plaintext is returned.",
        "PersonCreated",
        ("Location", "ETag", "Idempotent-Replayed"),
        headers=(IDEMPOTENCY_KEY,),
        body="Person",
        max_body_bytes=PERSON_BODY_MAX_BYTES,
        errors=(*_WRITE, 409, 422),
    ),
    (PERSON, "PUT"): Operation(
        "Replace every field of a person under a new data key.",
        200,
        "Replaced.",
        "PersonUpdated",
        ("ETag",),
        headers=(IF_MATCH,),
        body="Person",
        max_body_bytes=PERSON_BODY_MAX_BYTES,
        errors=(*_WRITE, 404, 412),
    ),
    (PERSON, "PATCH"): Operation(
        "Rewrite only the fields sent (address as a whole); the others are not decrypted.",
        200,
        "Patched.",
        "PersonUpdated",
        ("ETag",),
        headers=(IF_MATCH,),
        body="PersonPatch",
        max_body_bytes=PERSON_BODY_MAX_BYTES,
        errors=(*_WRITE, 404, 412),
    ),
    (PERSON, "DELETE"): Operation(
        "Delete a person.",
        204,
        "Deleted.",
        headers=(IF_MATCH,),
        errors=(404, 412, 415),
    ),
    (SECRET, "PUT"): Operation(
        "Store a new version of a secret (older versions stay readable).",
        201,
        "Version created.",
        "SecretCreated",
        ("ETag", "Idempotent-Replayed"),
        headers=(IDEMPOTENCY_KEY,),
        body="SecretValue",
        max_body_bytes=SECRET_BODY_MAX_BYTES,
        errors=(*_WRITE, 409, 422),
    ),
    (SECRET, "DELETE"): Operation(
        "Delete a secret and every version of it. It reads as gone at once; a secret with many versions "
        "is removed over several requests: 202 means repeat the DELETE after Retry-After seconds.",
        204,
        "Deleted: nothing of the secret is left.",
        errors=(404, 409, 415),
        accepted_schema="DeleteInProgress",
    ),
    (PEOPLE, "GET"): Operation(
        "One page of a tenant's people, decrypted; or, with ?ids=, those people (multi-get).",
        200,
        "A page.",
        "PeoplePage",
        query=(LIMIT, NEXT, FIELDS, IDS),
        errors=(415,),
    ),
    (PEOPLE_SEARCH, "POST"): Operation(
        "The tenant's people with this email, decrypted. A POST so the address stays out of URLs; read-only. "
        "Eventually consistent: people are indexed from the table's stream (about a second).",
        200,
        "The matching people (an empty list when none).",
        "PeopleFound",
        body="PeopleSearch",
        max_body_bytes=SEARCH_BODY_MAX_BYTES,
        errors=(413, 415),
    ),
    (PERSON, "GET"): Operation(
        "A person, decrypted (only the fields asked for).",
        200,
        "The person.",
        "PersonView",
        ("ETag",),
        query=(FIELDS,),
        errors=(404, 415),
    ),
    (SECRET, "GET"): Operation(
        "The latest version of a secret, or ?version=N.",
        200,
        "The secret.",
        "SecretView",
        ("ETag",),
        query=(VERSION,),
        errors=(404, 415),
    ),
    (SECRET_VERSIONS, "GET"): Operation(
        "Version metadata of a secret, no values.",
        200,
        "Versions, oldest first.",
        "SecretVersions",
        errors=(404, 415),
    ),
}

# The masked stage: the reader's people GETs (same parameters and statuses), answering masked
# projections (docs/masked.md); a field without a projection is null.
MASKED_OPERATIONS: dict[tuple[str, str], Operation] = {
    (PEOPLE, "GET"): Operation(
        "One page of a tenant's people, masked; or, with ?ids=, those people (multi-get).",
        200,
        "A page of masked people.",
        "MaskedPeoplePage",
        query=(LIMIT, NEXT, FIELDS, IDS),
        errors=(415,),
    ),
    (PERSON, "GET"): Operation(
        "A person's masked projections (only the fields asked for).",
        200,
        "The person, masked.",
        "MaskedPersonView",
        ("ETag",),
        query=(FIELDS,),
        errors=(404, 415),
    ),
}
# Which stage answers a route by which table: the masked stage's rows, else the shared one.
STAGE_OPERATIONS: dict[str, dict[tuple[str, str], Operation]] = {"masked": MASKED_OPERATIONS}

_PARAM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def operation(path: str, method: str) -> Operation:
    return OPERATIONS[(path, method)]


def masked_operation(path: str) -> Operation:
    """The masked stage's GET of ``path``."""
    return MASKED_OPERATIONS[(path, "GET")]


def operations_of(role: str) -> dict[tuple[str, str], Operation]:
    """The contract rows of a stage's routes."""
    return STAGE_OPERATIONS.get(role, OPERATIONS)


def known_query(op: Operation, params: Mapping[str, str] | None) -> dict[str, str]:
    """The route's query parameters; an unknown one is an error, not silently ignored."""
    params = dict(params or {})
    allowed = [param.name for param in op.query]
    for name in params:
        if name not in allowed:
            shown = name if _PARAM_NAME.fullmatch(name) else "<unnamed>"
            raise errors.ValidationError(
                f"unknown query parameter {shown}; allowed: {', '.join(allowed) or 'none'}", field=shown
            )
    return params


def status_for(kind: type[errors.PiiVaultError]) -> int:
    """The status of an error class: its first row in ERROR_STATUSES, else 500."""
    return next((status for cls, status in ERROR_STATUSES if issubclass(kind, cls)), 500)


def status_of(exc: errors.PiiVaultError) -> int:
    return status_for(type(exc))
