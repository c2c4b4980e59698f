"""The OpenAPI 3 document of each stage, built from code (``python -m tools.openapi``).

Never imported by ``create_app``: the deployed functions do not serve it. The documents
are committed as ``docs/openapi-writer.json`` / ``docs/openapi-reader.json``; tests check
that they are current, valid OpenAPI 3, and name exactly the routes ``create_app(role)``
registers (operationId = the view function's name), and the e2e tier fuzzes both local
endpoints against them with schemathesis.
"""

from __future__ import annotations

from typing import Any

from chalicelib import idempotency
from chalicelib.config import ROLES
from chalicelib.models import (
    ADDRESS_REQUIRED,
    ID_PATTERNS,
    MAX_ADDRESS_PART_CHARS,
    MAX_NAME_CHARS,
    MAX_POSTAL_CODE_CHARS,
    MAX_SECRET_BYTES,
    PERSON_FIELDS,
    refused_text_class,
)

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
# Mirrors of limits that live in chalicelib.api.writer and chalicelib.service (a unit test
# compares them), so that this module imports neither Chalice nor the service.
PERSON_BODY_MAX_BYTES = 16 * 1024
SECRET_BODY_MAX_BYTES = 6 * MAX_SECRET_BYTES + 1024
MAX_PAGE_SIZE = 100
MAX_SECRET_VERSION = 10**9
SEARCH_BODY_MAX_BYTES = 4 * 1024  # chalicelib.api.reader

_REFUSED = refused_text_class()  # controls, format characters, line/paragraph separators
_TEXT = f"^[^{_REFUSED}]*[^\\s{_REFUSED}][^{_REFUSED}]*$"
_OPTIONAL_TEXT = f"^[^{_REFUSED}]*$"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _text(max_chars: int, description: str, *, required: bool = True) -> dict[str, Any]:
    schema = {
        "type": "string",
        "minLength": 1 if required else 0,
        "maxLength": max_chars,
        "pattern": _TEXT if required else _OPTIONAL_TEXT,
        "description": description,
    }
    if not required:
        schema["nullable"] = True  # null = absent
    return schema


def _address() -> dict[str, Any]:
    parts = {
        "line1": _text(MAX_ADDRESS_PART_CHARS, "First address line."),
        "line2": _text(MAX_ADDRESS_PART_CHARS, "Second address line.", required=False),
        "city": _text(MAX_ADDRESS_PART_CHARS, "City."),
        "postal_code": _text(MAX_POSTAL_CODE_CHARS, "Postal code."),
        "region": _text(MAX_ADDRESS_PART_CHARS, "Region, state or county.", required=False),
        "country": {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2 code."},
    }
    return {
        "type": "object",
        "description": "Sealed as one ciphertext. Text is stored trimmed; absent optional parts are omitted.",
        "properties": parts,
        "required": list(ADDRESS_REQUIRED),
        "additionalProperties": False,
    }


def _person_properties() -> dict[str, Any]:
    props = {
        "name": _text(MAX_NAME_CHARS, "Given name; stored trimmed."),
        "surname": _text(MAX_NAME_CHARS, "Family name; stored trimmed."),
        "email": {
            "type": "string",
            # Not "email": internationalised addresses (RFC 6531) are accepted and read back as sent.
            "format": "idn-email",
            "maxLength": 320,
            "description": "Syntactically valid address, internationalised allowed (no DNS lookup); stored normalised.",
        },
        "dob": {
            "type": "string",
            "format": "date",
            "pattern": r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
            "description": "Date of birth, ISO YYYY-MM-DD, from 1900-01-01 to today.",
        },
        "address": _ref("schemas", "Address"),
    }
    return props


def _schemas() -> dict[str, Any]:
    timestamp = {"type": "string", "format": "date-time", "description": "UTC, millisecond precision."}
    version = {"type": "integer", "minimum": 1, "maximum": MAX_SECRET_VERSION}
    person_id = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
    secret_id = {"type": "string", "pattern": f"^{ID_PATTERNS['secret_id']}$"}
    person_view = {
        "type": "object",
        "properties": {
            "id": person_id,
            "version": version,
            "created_at": timestamp,
            "updated_at": timestamp,
            "data": _ref("schemas", "PersonData"),
        },
        "required": ["id", "version", "created_at", "updated_at", "data"],
        "additionalProperties": False,
    }
    return {
        "Error": {
            "type": "object",
            "description": "Every error. The message names fields and limits, never a submitted or stored value.",
            "properties": {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "description": "Stable machine code."},
                "message": {"type": "string"},
            },
            "required": ["code", "message"],
            "additionalProperties": False,
        },
        "GatewayError": {
            "type": "object",
            "description": "Answered by API Gateway itself (SigV4 missing or invalid, no such route).",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
        },
        "Address": _address(),
        "Person": {
            "type": "object",
            "description": "A whole person. Every field is sensitive and stored only as ciphertext.",
            "properties": _person_properties(),
            "required": list(PERSON_FIELDS),
            "additionalProperties": False,
        },
        "PersonPatch": {
            "type": "object",
            "description": "Some fields of a person (at least one); the others are not touched, nor decrypted.",
            "properties": _person_properties(),
            "minProperties": 1,
            "additionalProperties": False,
        },
        "PersonData": {
            "type": "object",
            "description": "Decrypted fields: all five, or those named in ?fields=.",
            "properties": _person_properties(),
            "additionalProperties": False,
        },
        "PersonCreated": {
            "type": "object",
            "properties": {"id": person_id, "version": version, "created_at": timestamp},
            "required": ["id", "version", "created_at"],
            "additionalProperties": False,
        },
        "PersonUpdated": {
            "type": "object",
            "properties": {"id": person_id, "version": version, "updated_at": timestamp},
            "required": ["id", "version", "updated_at"],
            "additionalProperties": False,
        },
        "PersonView": person_view,
        "PeopleSearch": {
            "type": "object",
            "description": "Lookup by email. The value travels in the body, never in a URL.",
            "properties": {
                "email": {"type": "string", "maxLength": 320, "format": "email",
                          "description": "Compared after normalisation: domain case-folded (IDNA), "
                                         "local part as given."},
                "fields": {"type": "array", "minItems": 1, "uniqueItems": True,
                           "items": {"type": "string", "enum": list(PERSON_FIELDS)}},
            },
            "required": ["email"],
            "additionalProperties": False,
        },
        "PeopleFound": {
            "type": "object",
            "properties": {"items": {"type": "array", "items": _ref("schemas", "PersonView"), "maxItems": 100}},
            "required": ["items"],
            "additionalProperties": False,
        },
        "PeoplePage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("schemas", "PersonView"), "maxItems": MAX_PAGE_SIZE},
                "next": {
                    "type": "string",
                    "nullable": True,
                    "description": "Opaque token for the next page; null on the last page (and for ?ids=).",
                },
                "missing": {
                    "type": "array",
                    "items": person_id,
                    "maxItems": MAX_PAGE_SIZE,
                    "description": "With ?ids=: the ids asked for that do not exist, in the order asked.",
                },
            },
            "required": ["items", "next"],
            "additionalProperties": False,
        },
        "SecretValue": {
            "type": "object",
            "properties": {
                "value": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_SECRET_BYTES,
                    "description": f"Opaque text, at most {MAX_SECRET_BYTES} bytes of UTF-8 (413 beyond).",
                }
            },
            "required": ["value"],
            "additionalProperties": False,
        },
        "SecretCreated": {
            "type": "object",
            "properties": {"id": secret_id, "version": version, "created_at": timestamp},
            "required": ["id", "version", "created_at"],
            "additionalProperties": False,
        },
        "SecretView": {
            "type": "object",
            "properties": {
                "id": secret_id,
                "version": version,
                "created_at": timestamp,
                "value": {"type": "string"},
            },
            "required": ["id", "version", "created_at", "value"],
            "additionalProperties": False,
        },
        "SecretVersions": {
            "type": "object",
            "properties": {
                "id": secret_id,
                "versions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"version": version, "created_at": timestamp},
                        "required": ["version", "created_at"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["id", "versions"],
            "additionalProperties": False,
        },
    }


def _parameters() -> dict[str, Any]:
    field_names = {"type": "string", "enum": list(PERSON_FIELDS)}
    return {
        "customer_id": {
            "name": "customer_id",
            "in": "path",
            "required": True,
            "description": "Tenant.",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        },
        "person_id": {
            "name": "person_id",
            "in": "path",
            "required": True,
            "description": "Server-generated, never derived from PII.",
            "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        },
        "secret_id": {
            "name": "secret_id",
            "in": "path",
            "required": True,
            "description": "Chosen by the client (not PII).",
            "schema": {"type": "string", "pattern": f"^{ID_PATTERNS['secret_id']}$"},
        },
        "fields": {
            "name": "fields",
            "in": "query",
            "required": False,
            "description": "Decrypt only these fields (comma-separated).",
            "style": "form",
            "explode": False,
            "schema": {"type": "array", "items": field_names, "minItems": 1},
        },
        "limit": {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 25},
        },
        "next": {
            "name": "next",
            "in": "query",
            "required": False,
            "description": "The `next` token of the previous page, as returned.",
            "schema": {"type": "string", "minLength": 1},
        },
        "ids": {
            "name": "ids",
            "in": "query",
            "required": False,
            "description": f"Multi-get: up to {MAX_PAGE_SIZE} person ids, comma-separated; not with limit or next.",
            "style": "form",
            "explode": False,
            "schema": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "minItems": 1,
                "maxItems": MAX_PAGE_SIZE,
            },
        },
        "version": {
            "name": "version",
            "in": "query",
            "required": False,
            "description": "A secret version; absent = the latest.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_SECRET_VERSION},
        },
        "If-Match": {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "description": 'One strong ETag of the current version (`"3"`), or `*`; a mismatch is 412.',
            "schema": {"type": "string", "pattern": r'^("[1-9][0-9]{0,8}"|\*)$'},
        },
        "Idempotency-Key": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": (
                "A random UUID or 22-255 base64url characters (at least 128 random bits; shorter or "
                "other keys are 400). Retry-safe writes: a repeat with the same key and body within "
                "24 hours replays the first answer (status, body, headers, plus Idempotent-Replayed: "
                "true); the same key "
                "with a different body is 422; while the first request runs, 409."
            ),
            "schema": {
                "type": "string",
                "minLength": idempotency.MIN_KEY_CHARS,
                "maxLength": idempotency.MAX_KEY_CHARS,
                "pattern": f"^{idempotency.KEY.pattern}$",
            },
        },
    }


def _headers() -> dict[str, Any]:
    return {
        "ETag": {
            "description": 'The record\'s version as a strong ETag, e.g. `"3"`; send it back in If-Match.',
            "required": True,
            "schema": {"type": "string", "pattern": r'^"[1-9][0-9]{0,8}"$'},
        },
        "Location": {
            "description": "Path of the new person (behind the API Gateway stage, e.g. /api, when deployed): PUT/PATCH/DELETE it on this endpoint, GET it on the reader's.",
            "required": True,
            "schema": {"type": "string", "pattern": "^(/[A-Za-z0-9._-]{1,128})?/customers/[A-Za-z0-9_-]{1,64}/people/[0-9a-f]{32}$"},
        },
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
        "Idempotent-Replayed": {
            "description": "Present (`true`) when this is the stored answer to an earlier request with the same Idempotency-Key.",
            "required": False,
            "schema": {"type": "string", "enum": ["true"]},
        },
    }


_DESCRIPTIONS = {
    400: "Invalid request: validation_error or malformed_json (the message names the field).",
    403: "API Gateway: SigV4 signature missing or invalid (deployed stages only), or no such route.",
    404: "not_found.",
    409: "conflict / request_in_progress: a concurrent write won, or the first request with this Idempotency-Key is still running; retry after Retry-After seconds.",
    412: "precondition_failed: If-Match names another version.",
    413: "payload_too_large.",
    415: "unsupported_media_type: send application/json.",
    422: "idempotency_key_reused: the Idempotency-Key was already used with a different request body.",
    429: "throttled by KMS or DynamoDB; retry after Retry-After seconds (the request had no effect).",
    502: "kms_error / storage_error (a refusal; the request had no effect), or integrity_error (stored ciphertext failed authentication).",
    503: "service_unavailable: KMS or DynamoDB timed out or failed; retry after Retry-After seconds (the request had no effect).",
}


def _error(status: int) -> dict[str, Any]:
    if status == 403:
        return {"$ref": "#/components/responses/Gateway403"}
    return _ref("responses", f"Error{status}")


def _responses_components() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, description in _DESCRIPTIONS.items():
        if status == 403:
            out["Gateway403"] = {
                "description": description,
                "content": {"application/json": {"schema": _ref("schemas", "GatewayError")}},
            }
            continue
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": _ref("schemas", "Error")}},
        }
        if status in (409, 429, 503):
            response["headers"] = {"Retry-After": _ref("headers", "Retry-After")}
        out[f"Error{status}"] = response
    return out


def _ok(status: int, description: str, schema: str | None, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": _ref("schemas", schema)}}
    if headers:
        response["headers"] = {name: _ref("headers", name) for name in headers}
    return response


def _operation(
    view: str,
    summary: str,
    *,
    params: tuple[str, ...],
    ok: tuple[int, dict[str, Any]],
    errors: tuple[int, ...],
    body: tuple[str, int] | None = None,
) -> dict[str, Any]:
    statuses = sorted({400, 403, 429, 502, 503, *errors})
    op: dict[str, Any] = {
        "operationId": view,
        "summary": summary,
        "parameters": [_ref("parameters", name) for name in params],
        "responses": {str(ok[0]): ok[1], **{str(status): _error(status) for status in statuses}},
    }
    if body is not None:
        schema, max_bytes = body
        op["requestBody"] = {
            "required": True,
            "description": f"JSON, UTF-8, at most {max_bytes} bytes (413 beyond).",
            "content": {"application/json": {"schema": _ref("schemas", schema)}},
        }
    return op


PEOPLE = "/customers/{customer_id}/people"
PERSON = "/customers/{customer_id}/people/{person_id}"
PEOPLE_SEARCH = "/customers/{customer_id}/people/search"
SECRET = "/customers/{customer_id}/secrets/{secret_id}"
SECRET_VERSIONS = "/customers/{customer_id}/secrets/{secret_id}/versions"

_PERSON_BODY = ("Person", PERSON_BODY_MAX_BYTES)
_WRITE_ERRORS = (413, 415)


def _writer_paths() -> dict[str, dict[str, Any]]:
    ids = ("customer_id", "person_id")
    return {
        PEOPLE: {
            "post": _operation(
                "create_person",
                "Create a person; every field is encrypted before it is stored.",
                params=("customer_id", "Idempotency-Key"),
                body=_PERSON_BODY,
                ok=(201, _ok(201, "Created. No plaintext is returned.", "PersonCreated", ("Location", "ETag", "Idempotent-Replayed"))),
                errors=(*_WRITE_ERRORS, 409, 422),
            ),
        },
        PERSON: {
            "put": _operation(
                "replace_person",
                "Replace every field of a person under a new data key.",
                params=(*ids, "If-Match"),
                body=_PERSON_BODY,
                ok=(200, _ok(200, "Replaced.", "PersonUpdated", ("ETag",))),
                errors=(*_WRITE_ERRORS, 404, 412),
            ),
            "patch": _operation(
                "patch_person",
                "Rewrite only the fields sent (address as a whole); the others are not decrypted.",
                params=(*ids, "If-Match"),
                body=("PersonPatch", PERSON_BODY_MAX_BYTES),
                ok=(200, _ok(200, "Patched.", "PersonUpdated", ("ETag",))),
                errors=(*_WRITE_ERRORS, 404, 412),
            ),
            "delete": _operation(
                "delete_person",
                "Delete a person.",
                params=(*ids, "If-Match"),
                ok=(204, _ok(204, "Deleted.", None)),
                errors=(404, 412, 415),
            ),
        },
        SECRET: {
            "put": _operation(
                "put_secret",
                "Store a new version of a secret (older versions stay readable).",
                params=("customer_id", "secret_id", "Idempotency-Key"),
                body=("SecretValue", SECRET_BODY_MAX_BYTES),
                ok=(201, _ok(201, "Version created.", "SecretCreated", ("ETag", "Idempotent-Replayed"))),
                errors=(*_WRITE_ERRORS, 409, 422),
            ),
            "delete": _operation(
                "delete_secret",
                "Delete a secret and every version of it.",
                params=("customer_id", "secret_id"),
                ok=(204, _ok(204, "Deleted.", None)),
                errors=(404, 409, 415),
            ),
        },
    }


def _reader_paths() -> dict[str, dict[str, Any]]:
    return {
        PEOPLE: {
            "get": _operation(
                "list_people",
                "One page of a tenant's people, decrypted; or, with ?ids=, those people (multi-get).",
                params=("customer_id", "limit", "next", "fields", "ids"),
                ok=(200, _ok(200, "A page.", "PeoplePage")),
                errors=(415,),
            ),
        },
        PEOPLE_SEARCH: {
            "post": _operation(
                "search_people",
                "People of the tenant with this email (eventually consistent: indexed from the table's stream).",
                params=("customer_id",),
                body=("PeopleSearch", SEARCH_BODY_MAX_BYTES),
                ok=(200, _ok(200, "The matching people (an empty list when none).", "PeopleFound")),
                errors=(413, 415),
            ),
        },
        PERSON: {
            "get": _operation(
                "get_person",
                "A person, decrypted (only the fields asked for).",
                params=("customer_id", "person_id", "fields"),
                ok=(200, _ok(200, "The person.", "PersonView", ("ETag",))),
                errors=(404, 415),
            ),
        },
        SECRET: {
            "get": _operation(
                "get_secret",
                "The latest version of a secret, or ?version=N.",
                params=("customer_id", "secret_id", "version"),
                ok=(200, _ok(200, "The secret.", "SecretView", ("ETag",))),
                errors=(404, 415),
            ),
        },
        SECRET_VERSIONS: {
            "get": _operation(
                "secret_versions",
                "Version metadata of a secret, no values.",
                params=("customer_id", "secret_id"),
                ok=(200, _ok(200, "Versions, oldest first.", "SecretVersions")),
                errors=(404, 415),
            ),
        },
    }


def build_document(role: str) -> dict[str, Any]:
    """The OpenAPI document of the ``writer`` or the ``reader`` stage."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    paths = _writer_paths() if role == "writer" else _reader_paths()
    used = {p["$ref"].rsplit("/", 1)[1] for item in paths.values() for op in item.values() for p in op["parameters"]}
    what = "encrypt-only: creates, replaces, patches and deletes; never returns plaintext" if role == "writer" else (
        "decrypt-only: reads; has no write route"
    )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"pii-vault {role}",
            "version": API_VERSION,
            "description": (
                f"The {role} endpoint of pii-vault ({what}). Field-level envelope encryption under KMS. "
                "Deployed stages require SigV4 (IAM); `chalice local` does not enforce it."
            ),
        },
        "security": [{"sigv4": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 (API Gateway IAM authorization).",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
            "schemas": _schemas(),
            "parameters": {name: spec for name, spec in _parameters().items() if name in used},
            "headers": _headers(),
            "responses": _responses_components(),
        },
    }
