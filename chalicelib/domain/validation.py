"""Validated domain types and the rules that build them from request JSON.

Validation errors name the field (``address.country``) and the rule, never the
value: a rejected email is still somebody's email.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.support.errors import PayloadTooLargeError, ValidationError

PERSON_FIELDS = ("name", "surname", "email", "dob", "address")
ADDRESS_REQUIRED = ("line1", "city", "postal_code", "country")
ADDRESS_OPTIONAL = ("line2", "region")
MAX_NAME_CHARS = 200
MAX_ADDRESS_PART_CHARS = 200
MAX_POSTAL_CODE_CHARS = 20
MAX_SECRET_BYTES = 64 * 1024
MAX_EMAIL_CHARS = 320  # refused before parsing; email_validator's own limits are tighter
MIN_DOB = _dt.date(1900, 1, 1)
# The longest text of each text field, in reading order: what the validator checks and the
# OpenAPI schemas state. (The country must also be one of COUNTRY_CODES.)
PERSON_TEXT_MAX_CHARS = {"name": MAX_NAME_CHARS, "surname": MAX_NAME_CHARS}
ADDRESS_MAX_CHARS = {
    "line1": MAX_ADDRESS_PART_CHARS,
    "line2": MAX_ADDRESS_PART_CHARS,
    "city": MAX_ADDRESS_PART_CHARS,
    "postal_code": MAX_POSTAL_CODE_CHARS,
    "region": MAX_ADDRESS_PART_CHARS,
    "country": MAX_ADDRESS_PART_CHARS,
}
# ISO 3166-1 alpha-2: the 249 officially assigned codes (ISO/TC 46, 2023), in order. The one list:
# the writer validates against it and the OpenAPI documents enumerate it.
COUNTRY_CODES = tuple(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
    EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
    LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
    NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - one readable block of codes, not 249 quoted strings
)

_CUSTOMER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PERSON_ID = re.compile(r"[0-9a-f]{32}")
# Not . or ..: path segments that URL normalisation removes or resolves.
_SECRET_ID = re.compile(r"(?!\.\.?$)[A-Za-z0-9_.-]{1,128}")
# Invisible characters refused in names and address lines: controls (Cc: C0, DEL, C1
# incl. NEL), formats (Cf: bidi overrides, zero-width characters, BOM, soft hyphen) and
# the line and paragraph separators (Zl, Zp).
REFUSED_TEXT_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# The id rules as regular expressions (full match), for the OpenAPI path patterns.
ID_PATTERNS = {"customer_id": _CUSTOMER_ID.pattern, "person_id": _PERSON_ID.pattern, "secret_id": _SECRET_ID.pattern}
_COUNTRIES = frozenset(COUNTRY_CODES)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _require_id(pattern: re.Pattern[str], value: str, field: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValidationError(f"{field} must be {rule}", field=field)
    return value


def customer_id(value: str) -> str:
    return _require_id(_CUSTOMER_ID, value, "customer_id", "1-64 characters of A-Z a-z 0-9 _ -")


def person_id(value: str) -> str:
    return _require_id(_PERSON_ID, value, "person_id", "32 lowercase hex characters")


def secret_id(value: str) -> str:
    return _require_id(_SECRET_ID, value, "secret_id", "1-128 characters of A-Z a-z 0-9 _ . -, other than . and ..")


def _text(value: Any, field: str, max_chars: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    stripped = value.strip()
    if required and not stripped:
        raise ValidationError(f"{field} must not be empty", field=field)
    if len(value) > max_chars:
        raise ValidationError(f"{field} must be at most {max_chars} characters", field=field)
    if any(unicodedata.category(ch) in REFUSED_TEXT_CATEGORIES for ch in value):
        raise ValidationError(
            f"{field} must not contain control or format characters (Unicode Cc, Cf, Zl, Zp)", field=field
        )
    _utf8(value, field)
    return stripped


def _utf8(value: str, field: str) -> bytes:
    """JSON allows lone surrogates (\\ud800) that UTF-8 cannot carry: reject, don't crash."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} must be valid Unicode text", field=field) from None


def _email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    if len(value) > MAX_EMAIL_CHARS:
        raise ValidationError(f"{field} must be at most {MAX_EMAIL_CHARS} characters", field=field)
    _utf8(value, field)
    # Imported here: email_validator pulls in dnspython/idna, which only the writer needs.
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        # The library's message quotes the address; ours must not.
        raise ValidationError(f"{field} must be a valid email address", field=field) from None
    return result.normalized


def email(value: Any, field: str = "email") -> str:
    """A valid email in the normalised form the writer stores (and beacons are computed over)."""
    return _email(value, field)


def _dob(value: Any, today: _dt.date, field: str = "dob") -> str:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValidationError(f"{field} must be an ISO date YYYY-MM-DD", field=field)
    try:
        parsed = _dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{field} must be a real calendar date", field=field) from None
    if parsed > today:
        raise ValidationError(f"{field} must not be in the future", field=field)
    if parsed < MIN_DOB:
        raise ValidationError(f"{field} must not be before {MIN_DOB.isoformat()}", field=field)
    return parsed.isoformat()


def _reject_unknown(obj: Mapping[str, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        # Field names are schema, not data, but a client may send anything as a key:
        # name at most the first one, truncated, and only if it looks like a name.
        name = unknown[0]
        shown = name if re.fullmatch(r"[A-Za-z0-9_]{1,40}", name) else "<unnamed>"
        raise ValidationError(f"unknown field {prefix}{shown}", field=f"{prefix}{shown}")


def _address(value: Any, field: str = "address") -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be an object", field=field)
    _reject_unknown(value, ADDRESS_REQUIRED + ADDRESS_OPTIONAL, prefix=f"{field}.")
    out: dict[str, str] = {}
    for part in ADDRESS_REQUIRED + ADDRESS_OPTIONAL:
        name = f"{field}.{part}"
        if part not in value or value[part] is None:
            if part in ADDRESS_REQUIRED:
                raise ValidationError(f"{name} is required", field=name)
            continue
        out[part] = _text(value[part], name, ADDRESS_MAX_CHARS[part], required=part in ADDRESS_REQUIRED)
    if out["country"] not in _COUNTRIES:
        raise ValidationError(f"{field}.country must be an ISO 3166-1 alpha-2 code", field=f"{field}.country")
    return out


def _person_rules(today: _dt.date) -> dict[str, Callable[[Any], Any]]:
    return {
        "name": lambda v: _text(v, "name", PERSON_TEXT_MAX_CHARS["name"]),
        "surname": lambda v: _text(v, "surname", PERSON_TEXT_MAX_CHARS["surname"]),
        "email": _email,
        "dob": lambda v: _dob(v, today),
        "address": _address,
    }


def encode_field(value: Any) -> bytes:
    """Canonical bytes of one field value (what gets encrypted)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_field(field: str, plaintext: bytes) -> Any:
    """Inverse of the encoding used when sealing ``field``."""
    text = plaintext.decode("utf-8")
    return json.loads(text) if field == "address" else text


@dataclass(frozen=True)
class PersonFields:
    """A validated set of person fields (all five, or a subset for PATCH)."""

    values: Mapping[str, Any]

    def encoded(self) -> dict[str, bytes]:
        return {name: encode_field(value) for name, value in self.values.items()}


def parse_person(body: Any, *, today: _dt.date, partial: bool = False) -> PersonFields:
    """Validate a person document; ``partial`` allows a non-empty subset (PATCH)."""
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object", field="body")
    _reject_unknown(body, PERSON_FIELDS)
    rules = _person_rules(today)
    values: dict[str, Any] = {}
    for name in PERSON_FIELDS:
        if name not in body:
            if not partial:
                raise ValidationError(f"{name} is required", field=name)
            continue
        if body[name] is None:
            raise ValidationError(f"{name} must not be null", field=name)
        values[name] = rules[name](body[name])
    if not values:
        raise ValidationError("body must set at least one field", field="body")
    return PersonFields(values)


def parse_search(body: Any) -> tuple[str, tuple[str, ...]]:
    """``{"email": ..., "fields": [...]?}`` -> (email as given, fields to answer, all when absent)."""
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object", field="body")
    _reject_unknown(body, ("email", "fields"))
    value = body.get("email")
    if not isinstance(value, str):
        raise ValidationError("email must be a string", field="email")
    if "fields" not in body:
        return value, PERSON_FIELDS
    fields = body["fields"]
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(name, str) and name in PERSON_FIELDS for name in fields)
        or len(set(fields)) != len(fields)
    ):
        raise ValidationError(f"fields must list some of {', '.join(PERSON_FIELDS)}, each once", field="fields")
    return value, tuple(fields)


def parse_secret(body: Any) -> bytes:
    """Validate ``{"value": "..."}``; returns the UTF-8 bytes to seal."""
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object", field="body")
    _reject_unknown(body, ("value",))
    value = body.get("value")
    if not isinstance(value, str):
        raise ValidationError("value must be a string", field="value")
    if not value:
        raise ValidationError("value must not be empty", field="value")
    encoded = _utf8(value, "value")
    if len(encoded) > MAX_SECRET_BYTES:
        raise PayloadTooLargeError(f"value must be at most {MAX_SECRET_BYTES} bytes of UTF-8", field="value")
    return encoded
