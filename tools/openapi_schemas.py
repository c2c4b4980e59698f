"""JSON schemas and reusable components of the OpenAPI documents (used by ``tools/openapi.py``).

Every limit, id pattern, field list and status comes from ``chalicelib.api.contract`` or
``chalicelib.domain.validation``. Where JSON Schema can state a rule exactly (lengths, control
characters, the country list, calendar dates, ids, versions) it does; where it cannot
(e-mail syntax, "not in the future", UTF-8 byte counts), a request schema states a subset
the writer always accepts and the description says what else is accepted.
"""

from __future__ import annotations

import calendar
from typing import Any

from chalicelib.api import contract
from chalicelib.domain import validation
from chalicelib.store.beacons import MAX_MATCHES
from chalicelib.support import idempotency

# Text: no control characters (C0, DEL), and a required part not blank once trimmed.
_REFUSED = validation.refused_text_class()  # controls, format characters, line/paragraph separators
_TEXT = f"^[^{_REFUSED}]*[^\\s{_REFUSED}][^{_REFUSED}]*$"
_OPTIONAL_TEXT = f"^[^{_REFUSED}]*$"
_LOCATION = (
    f"^{contract.STAGE_PREFIX.pattern}/customers/{validation.ID_PATTERNS['customer_id']}"
    f"/people/{validation.ID_PATTERNS['person_id']}$"
)

# E-mail: the writer runs email_validator (RFC 5321/6531 syntax, IDNA, no DNS). A regular
# expression cannot state IDNA, so requests promise this subset, every address of which the
# writer accepts: a dot-atom of at most 64 characters with at most one dot (Latin-1 letters
# allowed), up to four domain labels (lower-case Latin-1 letters allowed), a 2-3 letter
# top-level domain (so never a special-use name such as .test or .local).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff-]"
_LABEL = r"[A-Za-z0-9\u00df-\u00f6\u00f8-\u00ff]{1,20}"
EMAIL_REQUEST = {
    "type": "string",
    "maxLength": 254,
    "pattern": f"^{_ATOM}{{1,32}}(\\.{_ATOM}{{1,31}})?@({_LABEL}(-{_LABEL})?\\.){{1,4}}[A-Za-z]{{2,3}}$",
    "description": (
        "An e-mail address, stored normalised (domain lower-cased). The pattern is a subset of what is "
        "accepted: any address valid by RFC 5321 / RFC 6531 syntax with a deliverable domain name "
        "(internationalised allowed; not .test, .local, .invalid, .arpa, .onion, localhost; no DNS lookup), "
        "at most 64 characters before the @ and 254 in all."
    ),
}
EMAIL_STORED = {
    "type": "string",
    "pattern": "^[^@]+@[^@]+$",
    "maxLength": 254,
    "description": "The address as accepted, normalised.",
}

# Date of birth: a real calendar date from validation.MIN_DOB to today. "Today" is not a static
# schema, so requests promise dates up to the end of DOB_DOCUMENTED_THROUGH (bump it yearly;
# later dates up to today are accepted too); stored dates can be anything accepted.
DOB_DOCUMENTED_THROUGH = 2025
_DAYS_28 = "0[1-9]|1[0-9]|2[0-8]"
_MONTH_DAY = f"((0[13578]|1[02])-({_DAYS_28}|29|30|31)|(0[469]|11)-({_DAYS_28}|29|30)|02-({_DAYS_28}))"
DOB_STORED = {
    "type": "string",
    "format": "date",
    "pattern": r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
    "description": f"Date of birth, ISO YYYY-MM-DD, from {validation.MIN_DOB.isoformat()} to the day it was written.",
}


def _years(years: list[int]) -> str:
    return "|".join(str(year) for year in years)


def _dob_request() -> dict[str, Any]:
    first = validation.MIN_DOB
    if (first.month, first.day) != (1, 1):
        raise AssertionError("the pattern starts on a 1 January")
    years = list(range(first.year, DOB_DOCUMENTED_THROUGH + 1))
    leap = [year for year in years if calendar.isleap(year)]
    return {
        "type": "string",
        "format": "date",
        "pattern": f"^(({_years(years)})-{_MONTH_DAY}|({_years(leap)})-02-29)$",
        "description": (
            f"Date of birth, ISO YYYY-MM-DD, a real date from {first.isoformat()} to today "
            f"(the pattern lists dates up to {DOB_DOCUMENTED_THROUGH}-12-31)."
        ),
    }


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
        "line1": _text(validation.MAX_ADDRESS_PART_CHARS, "First address line."),
        "line2": _text(validation.MAX_ADDRESS_PART_CHARS, "Second address line.", required=False),
        "city": _text(validation.MAX_ADDRESS_PART_CHARS, "City."),
        "postal_code": _text(validation.MAX_POSTAL_CODE_CHARS, "Postal code."),
        "region": _text(validation.MAX_ADDRESS_PART_CHARS, "Region, state or county.", required=False),
        "country": {
            "type": "string",
            "enum": list(validation.COUNTRY_CODES),
            "description": "ISO 3166-1 alpha-2 code.",
        },
    }
    return {
        "type": "object",
        "description": "Sealed as one ciphertext. Text is stored trimmed; absent optional parts are omitted.",
        "properties": parts,
        "required": list(validation.ADDRESS_REQUIRED),
        "additionalProperties": False,
    }


def _person_properties(*, request: bool) -> dict[str, Any]:
    """Request schemas promise acceptance; response schemas cover everything ever accepted."""
    return {
        "name": _text(validation.MAX_NAME_CHARS, "Given name; stored trimmed."),
        "surname": _text(validation.MAX_NAME_CHARS, "Family name; stored trimmed."),
        "email": EMAIL_REQUEST if request else EMAIL_STORED,
        "dob": _dob_request() if request else DOB_STORED,
        "address": _ref("schemas", "Address"),
    }


def masked_schemas() -> dict[str, Any]:
    """The masked stage's answers (chalicelib/domain/masking.py): null where a record has no projection."""
    person_view: dict[str, Any] = schemas()["PersonView"]
    initial = {
        "type": "string",
        "nullable": True,
        "minLength": 1,
        "maxLength": 2,
        "description": "Initial and '.', or '*' for a one-character value.",
    }
    data = {
        "type": "object",
        "description": "Masked projections: all five fields, or those named in ?fields=; null for a record "
        "written before the masked view existed.",
        "properties": {
            "name": initial,
            "surname": initial,
            "email": {
                "type": "string",
                "nullable": True,
                "pattern": "^[^@]?[*]{3}@[^@]+$",
                "description": "First character of the local part (none for a local part of one or two "
                "characters), ***, @ and the domain.",
            },
            "dob": {"type": "string", "nullable": True, "pattern": "^[0-9]{4}$", "description": "Year of birth."},
            "address": {
                "type": "object",
                "nullable": True,
                "properties": {
                    "city": _text(validation.MAX_ADDRESS_PART_CHARS, "City."),
                    "country": {"type": "string", "enum": list(validation.COUNTRY_CODES)},
                },
                "required": ["city", "country"],
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }
    view = {**person_view, "properties": {**person_view["properties"], "data": _ref("schemas", "MaskedPersonData")}}
    page = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": _ref("schemas", "MaskedPersonView"),
                "maxItems": contract.MAX_PAGE_SIZE,
            },
            "next": {"type": "string", "nullable": True, "description": "As for the reader's PeoplePage."},
            "missing": {"type": "array", "items": _id_schema("person_id"), "maxItems": contract.MAX_PAGE_SIZE},
        },
        "required": ["items", "next"],
        "additionalProperties": False,
    }
    return {"MaskedPersonData": data, "MaskedPersonView": view, "MaskedPeoplePage": page}


def schemas() -> dict[str, Any]:
    timestamp = {"type": "string", "format": "date-time", "description": "UTC, millisecond precision."}
    version = {"type": "integer", "minimum": 1, "maximum": contract.MAX_VERSION}
    person_id = _id_schema("person_id")
    secret_id = _id_schema("secret_id")
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
        "Address": _address(),
        "Person": {
            "type": "object",
            "description": "A whole person. Every field is sensitive and stored only as ciphertext.",
            "properties": _person_properties(request=True),
            "required": list(validation.PERSON_FIELDS),
            "additionalProperties": False,
        },
        "PersonPatch": {
            "type": "object",
            "description": "Some fields of a person (at least one); the others are not touched, nor decrypted.",
            "properties": _person_properties(request=True),
            "minProperties": 1,
            "additionalProperties": False,
        },
        "PersonData": {
            "type": "object",
            "description": "Decrypted fields: all five, or those named in ?fields=.",
            "properties": _person_properties(request=False),
            "additionalProperties": False,
        },
        "DeleteInProgress": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": ["deleting"]},
                "remaining_versions": {"type": "integer", "minimum": 1},
            },
            "required": ["id", "status", "remaining_versions"],
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
            "description": "Lookup by e-mail. The address travels in the body, never in a URL.",
            "properties": {
                "email": {
                    **EMAIL_REQUEST,
                    "description": "Compared after normalisation: the domain case-insensitively (IDNA), "
                    "the local part as given. A malformed address is a 400 naming `email`.",
                },
                "fields": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(validation.PERSON_FIELDS)},
                    "minItems": 1,
                    "uniqueItems": True,
                    "description": "Decrypt and answer only these fields (default: all).",
                },
            },
            "required": ["email"],
            "additionalProperties": False,
        },
        "PeopleFound": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("schemas", "PersonView"), "maxItems": MAX_MATCHES},
            },
            "required": ["items"],
            "additionalProperties": False,
        },
        "PeoplePage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("schemas", "PersonView"), "maxItems": contract.MAX_PAGE_SIZE},
                "next": {
                    "type": "string",
                    "nullable": True,
                    "description": "Opaque token for the next page; null on the last page (and for ?ids=).",
                },
                "missing": {
                    "type": "array",
                    "items": person_id,
                    "maxItems": contract.MAX_PAGE_SIZE,
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
                    "maxLength": validation.MAX_SECRET_BYTES,
                    "description": (
                        f"Opaque text, at most {validation.MAX_SECRET_BYTES} bytes of UTF-8 (413 beyond; "
                        "JSON Schema counts characters, so a shorter value of multi-byte characters can be too large)."
                    ),
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


def _id_schema(name: str) -> dict[str, str]:
    return {"type": "string", "pattern": f"^{contract.PATH_PARAMETERS[name][0]}$"}


def parameters() -> dict[str, Any]:
    """Every parameter object, by name: path ids, the contract's query parameters, request headers."""
    out: dict[str, Any] = {
        name: {"name": name, "in": "path", "required": True, "description": description, "schema": _id_schema(name)}
        for name, (_, description) in contract.PATH_PARAMETERS.items()
    }
    for op in contract.OPERATIONS.values():
        for param in op.query:
            spec: dict[str, Any] = {
                "name": param.name,
                "in": "query",
                "required": False,
                "description": param.description,
                "schema": param.schema(),
            }
            if spec["schema"]["type"] == "array":
                spec.update(style="form", explode=False)  # comma-separated
            out[param.name] = spec
    out[contract.IF_MATCH] = {
        "name": contract.IF_MATCH,
        "in": "header",
        "required": False,
        "description": 'One strong ETag of the current version (`"3"`), or `*`; a mismatch is 412.',
        "schema": {"type": "string", "pattern": f"^({contract.ETAG.pattern}|\\*)$"},
    }
    out[contract.IDEMPOTENCY_KEY] = {
        "name": contract.IDEMPOTENCY_KEY,
        "in": "header",
        "required": False,
        "description": (
            "Retry-safe writes: a repeat with the same key and body within 24 hours replays the "
            "first answer (status, body, headers, plus Idempotent-Replayed: true); the same key "
            "with a different body is 422; while the first request runs, 409."
        ),
        "schema": {
            "type": "string",
            "minLength": idempotency.MIN_KEY_CHARS,
            "maxLength": idempotency.MAX_KEY_CHARS,
            "pattern": f"^{idempotency.KEY.pattern}$",
        },
    }
    return out


def headers() -> dict[str, Any]:
    return {
        "ETag": {
            "description": 'The record\'s version as a strong ETag, e.g. `"3"`; send it back in If-Match.',
            "required": True,
            "schema": {"type": "string", "pattern": f"^{contract.ETAG.pattern}$"},
        },
        "Location": {
            "description": "Path of the new person (behind the API Gateway stage, e.g. /api, when deployed): "
            "PUT/PATCH/DELETE it on this endpoint, GET it on the reader's.",
            "required": True,
            "schema": {"type": "string", "pattern": _LOCATION},
        },
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
        "Idempotent-Replayed": {
            "description": "Present (`true`) when this is the stored answer to an earlier request "
            "with the same Idempotency-Key.",
            "required": False,
            "schema": {"type": "string", "enum": ["true"]},
        },
    }


_DESCRIPTIONS = {
    400: "Invalid request: validation_error or malformed_json (the message names the field).",
    403: "request_refused by API Gateway (deployed stages only): e.g. a malformed Authorization header.",
    404: "not_found: no such record; or no such route, or a caller the stage does not serve "
    "(a missing, bad or expired signature, or a principal not on the allow-list): one answer for both.",
    409: "conflict / request_in_progress: a concurrent write won, or the first request with this "
    "Idempotency-Key is still running; retry after Retry-After seconds.",
    412: "precondition_failed: If-Match names another version.",
    413: "payload_too_large.",
    415: "unsupported_media_type: send application/json.",
    422: "idempotency_key_reused: the Idempotency-Key was already used with a different request body.",
    429: "throttled by KMS or DynamoDB; retry after Retry-After seconds (the request had no effect).",
    502: "kms_error / storage_error (a refusal; the request had no effect), "
    "or integrity_error (stored ciphertext failed authentication).",
    503: "service_unavailable: KMS or DynamoDB timed out or failed; "
    "retry after Retry-After seconds (the request had no effect).",
}


def error_ref(status: int) -> dict[str, Any]:
    return _ref("responses", f"Error{status}")


def responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, description in _DESCRIPTIONS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": _ref("schemas", "Error")}},
        }
        if status in contract.RETRY_AFTER_STATUSES:
            response["headers"] = {"Retry-After": _ref("headers", "Retry-After")}
        out[f"Error{status}"] = response
    return out
