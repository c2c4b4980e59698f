"""Schemas of the values the API takes and gives: text, e-mail, date of birth, address, ids,
versions, timestamps.

Every limit, id rule, field list and country code is read from where the service states
it (``chalicelib.domain.validation``, ``chalicelib.api.contract``, email_validator's RFC
limits). Where JSON Schema can state a rule exactly (lengths, refused characters, the
country list, calendar dates, ids, versions) it does; where it cannot (e-mail syntax,
"not in the future", UTF-8 byte counts), a *request* schema promises a subset the writer
always accepts and its description says what else is accepted, while a *stored* schema
(in answers) covers everything ever accepted.
"""

from __future__ import annotations

import calendar
import functools
import unicodedata

from email_validator import rfc_constants

from chalicelib.api import contract
from chalicelib.api.schemas.model import Integer, Object, Ref, Schema, String, full_match
from chalicelib.domain import validation

TIMESTAMP = String(format="date-time", description="UTC, millisecond precision.")
VERSION = Integer(minimum=1, maximum=contract.MAX_VERSION)
ID_DESCRIPTIONS = {
    "customer_id": "Tenant.",
    "person_id": "Server-generated, never derived from PII.",
    "secret_id": "Chosen by the client (not PII).",
}


def identifier(name: str) -> String:
    """``customer_id``, ``person_id`` or ``secret_id``: the validator's full-match rule."""
    return String(pattern=full_match(validation.ID_PATTERNS[name]))


@functools.cache
def refused_text_class() -> str:
    """The characters the validator refuses in text (``validation.REFUSED_TEXT_CATEGORIES``)
    within the Basic Multilingual Plane, as the body of a regex character class
    (``\\u0000-\\u001f...``). The validator checks categories, so it also refuses the few
    such characters above U+FFFF (e.g. U+E0001), which a pattern without the ``u`` flag
    cannot name."""
    ranges: list[str] = []
    start: int | None = None
    for code in range(0x10001):
        refused = (
            code < 0x10000
            and not 0xD800 <= code <= 0xDFFF
            and unicodedata.category(chr(code)) in validation.REFUSED_TEXT_CATEGORIES
        )
        if refused and start is None:
            start = code
        elif not refused and start is not None:
            end = code - 1
            ranges.append(f"\\u{start:04x}" if start == end else f"\\u{start:04x}-\\u{end:04x}")
            start = None
    return "".join(ranges)


def text(max_chars: int, description: str, *, required: bool = True) -> String:
    """Text the validator accepts: no refused character and, when required, not blank once
    trimmed (an optional part may be null: absent)."""
    refused = refused_text_class()
    pattern = f"^[^{refused}]*[^\\s{refused}][^{refused}]*$" if required else f"^[^{refused}]*$"
    return String(
        description=description,
        min_length=1 if required else 0,
        max_length=max_chars,
        pattern=pattern,
        nullable=not required,
    )


# E-mail: the writer runs email_validator (RFC 5321/6531 syntax, IDNA, no DNS). A regular
# expression cannot state IDNA, so requests promise this subset, every address of which the
# writer accepts: a dot-atom within the library's local-part limit with at most one dot
# (Latin-1 letters allowed), up to four domain labels (lower-case Latin-1 letters allowed),
# a 2-3 letter top-level domain (so never a special-use name such as .test or .local).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff-]"
_LABEL = r"[A-Za-z0-9\u00df-\u00f6\u00f8-\u00ff]{1,20}"


def email_request(description: str | None = None) -> String:
    local = rfc_constants.LOCAL_PART_MAX_LENGTH
    first = local // 2  # atoms of first + 1 + (local - first - 1) characters: at most ``local``
    return String(
        max_length=rfc_constants.EMAIL_MAX_LENGTH,
        pattern=f"^{_ATOM}{{1,{first}}}(\\.{_ATOM}{{1,{local - first - 1}}})?@({_LABEL}(-{_LABEL})?\\.){{1,4}}"
        "[A-Za-z]{2,3}$",
        description=description
        or (
            "An e-mail address, stored normalised (domain lower-cased). The pattern is a subset of what is "
            "accepted: any address valid by RFC 5321 / RFC 6531 syntax with a deliverable domain name "
            "(internationalised allowed; not .test, .local, .invalid, .arpa, .onion, localhost; no DNS lookup), "
            f"at most {local} characters before the @ and {rfc_constants.EMAIL_MAX_LENGTH} in all."
        ),
    )


EMAIL_STORED = String(
    pattern="^[^@]+@[^@]+$",
    max_length=rfc_constants.EMAIL_MAX_LENGTH,
    description="The address as accepted, normalised.",
)

# Date of birth: a real calendar date from validation.MIN_DOB to today. "Today" is not a static
# schema, so requests promise dates up to the end of DOB_DOCUMENTED_THROUGH (bump it yearly;
# later dates up to today are accepted too); stored dates can be anything accepted.
DOB_DOCUMENTED_THROUGH = 2025
_DAYS_28 = "0[1-9]|1[0-9]|2[0-8]"
_MONTH_DAY = f"((0[13578]|1[02])-({_DAYS_28}|29|30|31)|(0[469]|11)-({_DAYS_28}|29|30)|02-({_DAYS_28}))"


def _years(years: range | list[int]) -> str:
    return "|".join(str(year) for year in years)


def dob_request() -> String:
    first = validation.MIN_DOB
    if (first.month, first.day) != (1, 1):
        raise AssertionError("the pattern starts on a 1 January")
    years = range(first.year, DOB_DOCUMENTED_THROUGH + 1)
    leap = [year for year in years if calendar.isleap(year)]
    return String(
        format="date",
        pattern=f"^(({_years(years)})-{_MONTH_DAY}|({_years(leap)})-02-29)$",
        description=(
            f"Date of birth, ISO YYYY-MM-DD, a real date from {first.isoformat()} to today "
            f"(the pattern lists dates up to {DOB_DOCUMENTED_THROUGH}-12-31)."
        ),
    )


def dob_stored() -> String:
    centuries = range(validation.MIN_DOB.year // 100, DOB_DOCUMENTED_THROUGH // 100 + 1)
    return String(
        format="date",
        pattern=f"^({_years(centuries)})[0-9]{{2}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        description=f"Date of birth, ISO YYYY-MM-DD, from {validation.MIN_DOB.isoformat()} to the day it was written.",
    )


def country(description: str | None = "ISO 3166-1 alpha-2 code.") -> String:
    return String(enum=validation.COUNTRY_CODES, description=description)


_ADDRESS_PARTS = {
    "line1": "First address line.",
    "line2": "Second address line.",
    "city": "City.",
    "postal_code": "Postal code.",
    "region": "Region, state or county.",
    "country": "ISO 3166-1 alpha-2 code.",
}


def address_part(name: str) -> String:
    """One address part as the validator checks it: text of its length, or the country list."""
    if name == "country":
        return country(_ADDRESS_PARTS[name])
    required = name in validation.ADDRESS_REQUIRED
    return text(validation.ADDRESS_MAX_CHARS[name], _ADDRESS_PARTS[name], required=required)


def address() -> Object:
    parts = validation.ADDRESS_MAX_CHARS
    if set(parts) != set(_ADDRESS_PARTS) or set(parts) != {*validation.ADDRESS_REQUIRED, *validation.ADDRESS_OPTIONAL}:
        raise LookupError("the address parts described differ from validation.ADDRESS_MAX_CHARS")
    return Object(
        description="Sealed as one ciphertext. Text is stored trimmed; absent optional parts are omitted.",
        properties={name: address_part(name) for name in parts},
        required=validation.ADDRESS_REQUIRED,
    )


_PERSON_TEXT = {"name": "Given name; stored trimmed.", "surname": "Family name; stored trimmed."}


def person_fields(*, request: bool) -> dict[str, Schema]:
    """The five person fields, in ``validation.PERSON_FIELDS`` order. Request schemas promise
    acceptance; answer schemas cover everything ever accepted."""
    if set(validation.PERSON_TEXT_MAX_CHARS) != set(_PERSON_TEXT):
        raise LookupError("the text fields described differ from validation.PERSON_TEXT_MAX_CHARS")
    fields: dict[str, Schema] = {
        name: text(limit, _PERSON_TEXT[name]) for name, limit in validation.PERSON_TEXT_MAX_CHARS.items()
    }
    fields["email"] = email_request() if request else EMAIL_STORED
    fields["dob"] = dob_request() if request else dob_stored()
    fields["address"] = Ref("Address")
    if set(fields) != set(validation.PERSON_FIELDS):
        raise LookupError("the person fields described differ from validation.PERSON_FIELDS")
    return {name: fields[name] for name in validation.PERSON_FIELDS}
