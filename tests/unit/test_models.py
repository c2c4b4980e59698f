"""Validation: every rule names its field and never echoes the rejected value."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.domain import validation
from chalicelib.support.errors import PayloadTooLargeError, ValidationError
from tools import sample

TODAY = _dt.date(2026, 11, 24)
PERSON = sample.person()


def _with(**changes: Any) -> dict[str, Any]:
    body = {**PERSON, **changes}
    return {k: v for k, v in body.items() if v is not ...}


def test_given_a_valid_person_when_parsed_then_all_five_fields_are_kept() -> None:
    person = validation.parse_person(PERSON, today=TODAY)
    assert set(person.values) == set(validation.PERSON_FIELDS)
    assert person.encoded()["name"] == b"Mirabelle"


def test_given_an_address_when_encoded_then_canonical_json_round_trips() -> None:
    person = validation.parse_person(PERSON, today=TODAY)
    raw = person.encoded()["address"]
    assert (
        raw
        == (
            '{"city":"Montréal-Est","country":"CA","line1":"77 Rue Oberkampf","line2":"Bâtiment C",'
            '"postal_code":"H1B 5K9","region":"Québec"}'
        ).encode()
    )
    assert validation.decode_field("address", raw) == PERSON["address"]


SECRET_VALUE = "Zq-sensitive-9137"

BAD_PEOPLE = [
    (_with(name=...), "name", "required"),
    (_with(name=""), "name", "empty"),
    (_with(name="   "), "name", "empty"),
    (_with(name=SECRET_VALUE * 20), "name", "at most"),
    (_with(name=12), "name", "string"),
    (_with(name=None), "name", "null"),
    (_with(name=SECRET_VALUE + "\x00"), "name", "control"),
    (_with(name=SECRET_VALUE + "\ud800"), "name", "Unicode"),
    (_with(surname=[SECRET_VALUE]), "surname", "string"),
    (_with(email=SECRET_VALUE), "email", "valid email"),
    (_with(email=SECRET_VALUE + "@@example.com"), "email", "valid email"),
    (_with(email=SECRET_VALUE + "@\ud800.com"), "email", "Unicode"),
    (_with(dob="10/12/1915"), "dob", "ISO date"),
    (_with(dob="1915-02-30"), "dob", "calendar"),
    (_with(dob="2027-01-01"), "dob", "future"),
    (_with(dob="1815-12-10"), "dob", "before"),
    (_with(dob=19151210), "dob", "ISO date"),
    (_with(address="London"), "address", "object"),
    (_with(address={**PERSON["address"], "country": "GBR"}), "address.country", "alpha-2"),
    (_with(address={**PERSON["address"], "country": "gb"}), "address.country", "alpha-2"),
    (_with(address={k: v for k, v in PERSON["address"].items() if k != "city"}), "address.city", "required"),
    (_with(address={**PERSON["address"], "zip": SECRET_VALUE}), "address.zip", "unknown"),
    (_with(address={**PERSON["address"], "postal_code": "1" * 21}), "address.postal_code", "at most"),
    ({**PERSON, "ssn": SECRET_VALUE}, "ssn", "unknown"),
    ({**PERSON, SECRET_VALUE + " x": 1}, "<unnamed>", "unknown"),
    ([PERSON], "body", "object"),
]


@pytest.mark.parametrize("body, field, rule", BAD_PEOPLE)
def test_given_an_invalid_person_when_parsed_then_error_names_field_not_value(body: Any, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.parse_person(body, today=TODAY)
    assert caught.value.field == field
    assert field in caught.value.message and rule in caught.value.message
    assert SECRET_VALUE not in caught.value.message and SECRET_VALUE not in str(caught.value)


def test_given_a_partial_person_when_parsed_for_patch_then_only_those_fields() -> None:
    assert set(validation.parse_person({"email": "a@b.org"}, today=TODAY, partial=True).values) == {"email"}


def test_given_an_empty_patch_when_parsed_then_400_on_body() -> None:
    with pytest.raises(ValidationError) as caught:
        validation.parse_person({}, today=TODAY, partial=True)
    assert caught.value.field == "body"


def test_given_an_email_with_uppercase_domain_when_parsed_then_domain_is_normalised() -> None:
    assert validation.parse_person(_with(email="Ada@Example.COM"), today=TODAY).values["email"] == "Ada@example.com"


@pytest.mark.parametrize(
    "parser, good, bad",
    [
        (validation.customer_id, "acme_Corp-1", "acme#1"),
        (validation.person_id, "0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF"),
        (validation.secret_id, "stripe.live-key_1", "stripe/key"),
    ],
)
def test_given_ids_when_validated_then_only_the_documented_alphabet_passes(
    parser: Callable[[str], str], good: str, bad: str
) -> None:
    assert parser(good) == good
    with pytest.raises(ValidationError):
        parser(bad)
    with pytest.raises(ValidationError):
        parser("")


def test_given_a_secret_at_the_limit_when_parsed_then_accepted_and_one_byte_more_is_413() -> None:
    assert len(validation.parse_secret({"value": "x" * validation.MAX_SECRET_BYTES})) == validation.MAX_SECRET_BYTES
    with pytest.raises(PayloadTooLargeError):
        validation.parse_secret({"value": "x" * (validation.MAX_SECRET_BYTES + 1)})


@pytest.mark.parametrize("body", [{"value": ""}, {"value": 5}, {}, {"value": "x", "other": 1}, "x"])
def test_given_a_bad_secret_body_when_parsed_then_validation_error(body: Any) -> None:
    with pytest.raises(ValidationError):
        validation.parse_secret(body)


@pytest.mark.parametrize("bad", [".", ".."])
def test_given_a_dot_segment_as_secret_id_then_400_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.secret_id(bad)
    assert caught.value.field == "secret_id" and "secret_id" in caught.value.message


@pytest.mark.parametrize("good", ["...", ".hidden", "a..b", "v1.2"])
def test_given_dots_inside_a_secret_id_then_accepted(good: str) -> None:
    assert validation.secret_id(good) == good


# Cc (C0, DEL, C1 incl. NEL), Cf (bidi overrides and isolates, zero-width, BOM, soft hyphen)
# and the line/paragraph separators (Zl, Zp).
INVISIBLE = [
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9f",
    "\u202e",
    "\u202a",
    "\u2066",
    "\u2069",
    "\u200e",
    "\u061c",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u2028",
    "\u2029",
]
TEXT_FIELDS = ["name", "surname"] + [f"address.{part}" for part in ("line1", "line2", "city", "region", "postal_code")]


def _set(field: str, value: str) -> dict[str, Any]:
    if field.startswith("address."):
        return _with(address={**PERSON["address"], field.split(".", 1)[1]: value})
    return _with(**{field: value})


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_given_a_control_or_format_character_in_a_name_or_address_line_then_400_naming_the_field(
    field: str, char: str
) -> None:
    value = "SW1" + char + "4JH" if field == "address.postal_code" else SECRET_VALUE[:8] + char + "x"
    with pytest.raises(ValidationError) as caught:
        validation.parse_person(_set(field, value), today=TODAY)
    assert caught.value.field == field and field in caught.value.message
    assert "control or format" in caught.value.message and value not in caught.value.message


@pytest.mark.parametrize("field", ["name", "address.city"])
def test_given_a_patch_with_a_format_character_then_refused_too(field: str) -> None:
    part: dict[str, Any] = (
        {field: "A\u202eB"} if field == "name" else {"address": {**PERSON["address"], "city": "A\u200bB"}}
    )
    with pytest.raises(ValidationError) as caught:
        validation.parse_person(part, today=TODAY, partial=True)
    assert caught.value.field == field


@pytest.mark.parametrize("value", ["José Ñúñez", "Zoë O'Brien-Smith", "山田 太郎", "Ελένη", "محمد", "Łódź"])
def test_given_letters_marks_and_spaces_of_any_script_then_accepted(value: str) -> None:
    assert validation.parse_person(_with(name=value), today=TODAY).values["name"] == value
