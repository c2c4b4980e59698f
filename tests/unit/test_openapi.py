"""The published OpenAPI documents: valid OpenAPI 3, current, every registered route documented,
and their patterns state what the writer accepts."""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from chalicelib.api import contract
from chalicelib.api.schemas import fields as schema_fields
from chalicelib.domain import validation
from chalicelib.stages import API_STAGE_NAMES
from chalicelib.support.errors import ValidationError
from tools import openapi as tool

ROLES = API_STAGE_NAMES


@pytest.mark.parametrize("role", ROLES)
def test_given_each_role_when_documented_then_every_registered_route_is_an_operation_named_after_its_view(
    role: str,
) -> None:
    document = tool.build_document(role)
    documented = {
        (path, method.upper(), op["operationId"])
        for path, item in document["paths"].items()
        for method, op in item.items()
    }

    assert documented == set(tool.app_routes(role))


def test_given_both_roles_then_every_contract_row_is_a_registered_route() -> None:
    registered = {(path, method) for role in ROLES for path, method, _ in tool.app_routes(role)}

    assert registered == set(contract.OPERATIONS)


def test_given_a_route_without_a_contract_row_when_documented_then_building_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(contract.OPERATIONS, (contract.PERSON, "PATCH"))

    with pytest.raises(LookupError, match=r"PATCH /customers/\{customer_id\}/people/\{person_id\} \(patch_person\)"):
        tool.build_document("writer")


def test_given_the_masked_document_then_it_has_the_people_gets_only_answering_masked_schemas() -> None:
    document = tool.build_document("masked")
    methods = {(path, method) for path, item in document["paths"].items() for method in item}

    assert methods == {
        ("/customers/{customer_id}/people", "get"),
        ("/customers/{customer_id}/people/{person_id}", "get"),
    }
    answers = {
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        for op in (item["get"] for item in document["paths"].values())
    }
    assert answers == {"#/components/schemas/MaskedPeoplePage", "#/components/schemas/MaskedPersonView"}
    data = document["components"]["schemas"]["MaskedPersonData"]["properties"]
    assert data["dob"]["pattern"] == "^[0-9]{4}$" and set(data["address"]["properties"]) == {"city", "country"}
    assert all(schema.get("nullable") for schema in data.values())  # records written before the view: null


def test_given_the_reader_document_when_listing_methods_then_it_has_no_write_method() -> None:
    paths = tool.build_document("reader")["paths"]
    methods = {(path, method) for path, item in paths.items() for method in item}

    # The one POST is the search: read-only, a POST only so the email stays out of URLs.
    assert {method for _, method in methods} == {"get", "post"}
    assert {(p, m) for p, m in methods if m != "get"} == {("/customers/{customer_id}/people/search", "post")}


@pytest.mark.parametrize("role", ROLES)
def test_given_each_document_when_validated_then_it_is_valid_openapi_3(role: str) -> None:
    document = tool.build_document(role)

    validate(json.loads(tool.render(document)))  # raises on any violation of the OpenAPI 3.0 schema
    assert document["openapi"].startswith("3.")


def test_given_an_invalid_document_when_validated_then_the_validator_rejects_it() -> None:
    document = copy.deepcopy(tool.build_document("writer"))
    document["paths"][contract.PEOPLE]["post"]["responses"]["201"].pop("description")

    with pytest.raises(OpenAPIValidationError, match="is not valid under any of the schemas"):
        validate(document)


def test_given_the_committed_documents_when_checked_then_they_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["--check"]) == 0, capsys.readouterr().err


def test_given_a_stale_document_when_checked_then_check_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tool.main(["--out-dir", str(tmp_path)]) == 0
    (tmp_path / "openapi-reader.json").write_text("{}\n", encoding="utf-8")

    assert tool.main(["--out-dir", str(tmp_path), "--check"]) == 1
    assert "openapi-reader.json is missing or out of date" in capsys.readouterr().err


@pytest.mark.parametrize("role", ROLES)
def test_given_each_operation_when_documented_then_errors_use_the_error_schema_and_bodies_declare_413_415(
    role: str,
) -> None:
    document = tool.build_document(role)
    responses = document["components"]["responses"]

    for item in document["paths"].values():
        for op in item.values():
            codes = set(op["responses"])
            assert {"400", "403", "404", "429", "502"} <= codes, op["operationId"]
            if "requestBody" in op:
                assert {"413", "415"} <= codes, op["operationId"]
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    name = response["$ref"].rsplit("/", 1)[1]
                    schema = responses[name]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (op["operationId"], status)


def test_given_write_operations_when_documented_then_if_match_and_idempotency_key_are_where_the_api_takes_them() -> (
    None
):
    paths = tool.build_document("writer")["paths"]

    def headers(path: str, method: str) -> set[str]:
        return {p["$ref"].rsplit("/", 1)[1] for p in paths[path][method]["parameters"]} & {
            "If-Match",
            "Idempotency-Key",
        }

    assert headers(contract.PEOPLE, "post") == {"Idempotency-Key"}
    assert headers(contract.SECRET, "put") == {"Idempotency-Key"}
    for method in ("put", "patch", "delete"):
        assert headers(contract.PERSON, method) == {"If-Match"}


def _request_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = tool.build_document("writer")["components"]["schemas"]["Person"]["properties"][name]
    return schema


def _writer_accepts(**fields: object) -> bool:
    person = {
        "name": "Ada",
        "surname": "Lovelace",
        "email": "ada@example.org",
        "dob": "1915-12-10",
        "address": {"line1": "1 St James's Sq", "city": "London", "postal_code": "SW1Y", "country": "GB"},
    }
    try:
        validation.parse_person({**person, **fields}, today=_dt.date(2026, 11, 30), partial=True)
    except ValidationError:
        return False
    return True


def test_given_the_country_enum_then_it_is_exactly_what_the_writer_accepts() -> None:
    enum = set(tool.build_document("writer")["components"]["schemas"]["Address"]["properties"]["country"]["enum"])
    candidates = {a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}

    accepted = {
        c for c in candidates if _writer_accepts(address={"line1": "x", "city": "y", "postal_code": "z", "country": c})
    }

    assert accepted == enum
    assert len(enum) == 249 and {"GB", "FR", "US", "CW", "SS"} <= enum and not {"UK", "EU", "XK", "ZZ"} & enum


def test_given_the_dob_pattern_then_it_matches_exactly_the_real_dates_from_1900_through_the_documented_year() -> None:
    pattern = re.compile(_request_schema("dob")["pattern"])
    last = _dt.date(schema_fields.DOB_DOCUMENTED_THROUGH, 12, 31)
    day, matched = _dt.date(1890, 1, 1), 0
    while day <= _dt.date(2030, 12, 31):
        expected = validation.MIN_DOB <= day <= last
        assert bool(pattern.fullmatch(day.isoformat())) == expected, day
        assert not expected or _writer_accepts(dob=day.isoformat()), day
        matched += expected
        day += _dt.timedelta(days=1)
    for impossible in ("1900-02-29", "2023-02-29", "2001-04-31", "2000-13-01", "2000-00-10", "2000-1-01"):
        assert not pattern.fullmatch(impossible) and not _writer_accepts(dob=impossible)
    assert matched == (last - validation.MIN_DOB).days + 1


@pytest.mark.parametrize(
    "email",
    [
        "a@b.co",
        "O'Brien.x+tag@mail-1.example.org",
        "jürgen@bücher.de",
        "ÆØÅ.é@ß.dk",
        "x" * 32 + "." + "y" * 31 + "@a.b.c.dd",
    ],
)
def test_given_addresses_matching_the_email_pattern_then_the_writer_accepts_them(email: str) -> None:
    assert re.fullmatch(_request_schema("email")["pattern"], email)
    assert _writer_accepts(email=email)


@pytest.mark.parametrize("email", ["a@localhost", "a@b.test", "a@b.local", "a..b@c.de", "a@b.c1", "a@-b.de", "@b.de"])
def test_given_addresses_the_writer_refuses_then_the_email_pattern_refuses_them_too(email: str) -> None:
    assert not _writer_accepts(email=email)
    assert not re.fullmatch(_request_schema("email")["pattern"], email)


def test_given_the_text_pattern_then_it_refuses_exactly_the_characters_and_blanks_the_writer_refuses() -> None:
    pattern = re.compile(_request_schema("name")["pattern"])
    for code in [*range(0, 0x250), 0x2028, 0x3000, 0xFEFF, 0x10FFFF]:
        text = f"a{chr(code)}b"
        assert bool(pattern.fullmatch(text)) == _writer_accepts(name=text), hex(code)
        assert bool(pattern.fullmatch(chr(code) * 2)) == _writer_accepts(name=chr(code) * 2), hex(code)
