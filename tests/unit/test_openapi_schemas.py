"""The contract's schema objects (chalicelib/api/schemas) follow the code that states each rule:
a view's fields (its shape), a validation limit, a masking rule, an error code. Change one
without the other and a test here fails; and no deployed function loads them."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, TypedDict

import pytest
from openapi_schema_validator import OAS30Validator

from chalicelib.api import contract, gateway_responses, shapes, views
from chalicelib.api.schemas import components
from chalicelib.api.schemas import errors as error_schemas
from chalicelib.api.schemas.model import Array, Integer, Object, Ref, String
from chalicelib.api.schemas.shaped import ShapeMismatch, check_references, of_shape, shape_of
from chalicelib.domain import masking, validation
from chalicelib.service import DecryptedPerson, DecryptedSecret, PeopleBatch, PeoplePage, WriteResult
from chalicelib.stages import API_STAGE_NAMES
from chalicelib.support import errors
from chalicelib.support.errors import ValidationError
from tools import openapi as tool
from tools import sample

ROOT = Path(__file__).resolve().parents[2]
TODAY = _dt.date(2026, 11, 30)
STAMP = "2026-11-30T12:00:00.000Z"
PERSON_ID = "0123456789abcdef0123456789abcdef"


def _validator(role: str, name: str) -> OAS30Validator:
    """The validator of component schema ``name`` of the stage's document."""
    document = tool.build_document(role)
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": document["components"]})


def _conforms(role: str, name: str, value: Any) -> None:
    """Raises unless ``value`` is valid under component schema ``name`` of the stage's document."""
    _validator(role, name).validate(value)


def _accepted(role: str, name: str, value: Any) -> bool:
    return bool(_validator(role, name).is_valid(value))


# --- answers: the schemas follow the views' shapes ---------------------------------------------


def _view_functions() -> list[Any]:
    return [f for name, f in inspect.getmembers(views, inspect.isfunction) if f.__module__ == views.__name__]


def _origins(schema: Any) -> set[type]:
    if isinstance(schema, Array):
        return _origins(schema.items)
    if isinstance(schema, Object):
        own = {schema.origin} if schema.origin is not None else set()
        return own.union(*(_origins(part) for part in schema.properties.values()))
    return set()


def test_given_every_view_then_the_shape_it_returns_is_documented_by_a_schema() -> None:
    documented = set().union(*(_origins(schema) for schema in components().schemas.values()))

    assert {shape_of(view) for view in _view_functions()} <= documented
    shaped = {
        value for value in vars(shapes).values() if isinstance(value, type) and value.__module__ == shapes.__name__
    }
    assert shaped == documented  # and no shape is left undocumented


def test_given_what_each_view_answers_then_it_conforms_to_its_schema() -> None:
    person = DecryptedPerson(
        PERSON_ID, 3, STAMP, STAMP, dict(validation.parse_person(sample.person(), today=TODAY).values)
    )
    written = WriteResult(PERSON_ID, 1, STAMP)
    version = dataclasses.make_dataclass("Version", [("version", int), ("created_at", str)])

    _conforms("reader", "PersonView", views.person(person))
    _conforms("reader", "PeoplePage", views.people_page(PeoplePage([person], "token")))
    _conforms("reader", "PeoplePage", views.people_batch(PeopleBatch([person], ["f" * 32])))
    _conforms("reader", "PeopleFound", views.people_found([person, person]))
    _conforms("reader", "SecretView", views.secret(DecryptedSecret("api-key", 2, STAMP, "s3cr3t")))
    _conforms("reader", "SecretVersions", views.secret_versions("api-key", [version(1, STAMP), version(2, STAMP)]))
    _conforms("writer", "PersonCreated", views.created(written))
    _conforms("writer", "SecretCreated", views.created(WriteResult("api-key", 4, STAMP)))
    _conforms("writer", "PersonUpdated", views.updated(written))
    _conforms("writer", "DeleteInProgress", views.delete_in_progress("api-key", 7))


def test_given_a_view_answering_a_field_its_schema_lacks_then_the_answer_does_not_conform() -> None:
    answer: dict[str, Any] = {**views.updated(WriteResult(PERSON_ID, 2, STAMP)), "etag": '"2"'}

    assert not _accepted("writer", "PersonUpdated", answer)
    assert not _accepted("writer", "PersonUpdated", {k: v for k, v in answer.items() if k not in ("etag", "id")})


class _PersonViewPlus(shapes.PersonView):
    etag: str


class _PersonViewLess(TypedDict):
    id: str
    version: int
    created_at: str
    data: dict[str, Any]


class _PersonViewRetyped(TypedDict):
    id: str
    version: str
    created_at: str
    updated_at: str
    data: dict[str, Any]


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (_PersonViewPlus, r"PersonViewPlus lacks etag and has nothing more"),
        (_PersonViewLess, r"PersonViewLess lacks nothing and has updated_at more"),
        (_PersonViewRetyped, r"PersonViewRetyped.version: the shape says <class 'str'>, the schema is a Integer"),
    ],
)
def test_given_a_view_shape_changed_without_its_schema_then_no_document_can_be_built(
    monkeypatch: pytest.MonkeyPatch, shape: type, message: str
) -> None:
    monkeypatch.setattr(shapes, "PersonView", shape)  # what views.person is annotated to return

    with pytest.raises(ShapeMismatch, match=message):
        tool.build_document("reader")


def test_given_a_nested_shape_documented_by_another_schema_then_the_mismatch_is_refused() -> None:
    person = components().schemas["PersonData"]
    found = of_shape(shapes.PeopleFound, items=Array(Ref("PersonData")))

    with pytest.raises(ShapeMismatch, match=r"PeopleFound\.items refers to PersonData, not a schema of PersonView"):
        check_references({"PersonData": person, "PeopleFound": found})
    with pytest.raises(
        ShapeMismatch, match=r"SecretVersions.versions\[\]: the schema is not derived from SecretVersion"
    ):
        of_shape(shapes.SecretVersions, id=String(), versions=Array(of_shape(shapes.Created, **_CREATED)))


_CREATED: dict[str, Any] = {"id": String(), "version": Integer(), "created_at": String()}


def test_given_a_literal_in_a_shape_then_the_schema_enumerates_exactly_its_values() -> None:
    status = tool.build_document("writer")["components"]["schemas"]["DeleteInProgress"]["properties"]["status"]

    assert status["enum"] == ["deleting"]


def test_given_optional_and_nullable_shape_fields_then_the_schema_requires_and_nulls_as_the_shape_says() -> None:
    page = tool.build_document("reader")["components"]["schemas"]["PeoplePage"]

    assert page["required"] == ["items", "next"]  # `missing` is NotRequired
    assert page["properties"]["next"]["nullable"] is True and "nullable" not in page["properties"]["missing"]


# --- masked answers: the schema follows the masking rules --------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"name": "李", "surname": "O", "email": "jo@example.org"},
        {"name": "Ådne", "email": "a@bücher.de", "dob": "1900-01-01"},
        {"address": {"line1": "1 High St", "city": " Zürich ", "postal_code": "8001", "country": "CH"}},
    ],
)
def test_given_masked_projections_of_valid_people_then_they_conform_to_the_masked_schema(
    changes: dict[str, Any],
) -> None:
    values = validation.parse_person(sample.person(**changes), today=TODAY).values
    view = views.person(DecryptedPerson(PERSON_ID, 1, STAMP, STAMP, masking.masked(values)))

    _conforms("masked", "MaskedPersonView", view)
    _conforms("masked", "MaskedPersonView", {**view, "data": {"name": None, "address": None}})  # before the view
    assert not _accepted("masked", "MaskedPersonView", {**view, "data": values})  # full values are not masked


# --- requests: the schemas follow the validation limits ----------------------------------------


def _text_fields(document: dict[str, Any]) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(field, address part or None, schema) of every text property of Person and Address."""
    schemas = document["components"]["schemas"]
    out = [(name, None, s) for name, s in schemas["Person"]["properties"].items() if "maxLength" in s]
    out += [("address", part, s) for part, s in schemas["Address"]["properties"].items() if "maxLength" in s]
    return [(field, part, schema) for field, part, schema in out if field != "email"]  # e-mail: its own tests


def _with(field: str, part: str | None, value: str) -> dict[str, Any]:
    """A valid person of short values (within any limit a test sets), one text value replaced."""
    address = {"line1": "1 A St", "line2": "B", "city": "C", "postal_code": "D1", "region": "E", "country": "GB"}
    body: dict[str, Any] = {**sample.person(name="Al", surname="Bo"), "address": address}
    if part is None:
        body[field] = value
    else:
        body["address"][part] = value
    return body


def _writer_takes(field: str, part: str | None, value: str) -> bool:
    body = _with(field, part, value)
    try:
        validation.parse_person(body, today=TODAY)
    except ValidationError:
        return False
    return True


def _schema_takes(field: str, part: str | None, value: str) -> bool:
    return _accepted("writer", "Person", _with(field, part, value))


def _assert_text_limits_agree() -> list[str]:
    checked = []
    for field, part, schema in _text_fields(tool.build_document("writer")):
        where = f"{field}.{part}" if part else field
        longest, shortest = schema["maxLength"], schema["minLength"]
        for value, takes in (("a" * longest, True), ("a" * (longest + 1), False), ("", shortest == 0)):
            assert _writer_takes(field, part, value) is takes, (where, len(value))
            assert _schema_takes(field, part, value) is takes, (where, len(value))
        checked.append(where)
    return checked


def test_given_each_text_field_then_schema_and_writer_take_exactly_the_same_lengths() -> None:
    checked = _assert_text_limits_agree()

    assert set(checked) >= {"name", "surname", "address.line1", "address.line2", "address.postal_code"}


def test_given_a_validation_limit_changed_then_the_schema_follows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(validation.ADDRESS_MAX_CHARS, "city", 31)
    monkeypatch.setitem(validation.PERSON_TEXT_MAX_CHARS, "surname", 7)

    schemas = tool.build_document("writer")["components"]["schemas"]

    assert schemas["Address"]["properties"]["city"]["maxLength"] == 31
    assert schemas["Person"]["properties"]["surname"]["maxLength"] == 7
    _assert_text_limits_agree()


def test_given_the_secret_limit_then_schema_and_writer_agree_on_the_longest_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validation, "MAX_SECRET_BYTES", 100)
    schema = tool.build_document("writer")["components"]["schemas"]["SecretValue"]["properties"]["value"]

    assert schema["maxLength"] == 100
    assert validation.parse_secret({"value": "v" * 100}) == b"v" * 100
    with pytest.raises(errors.PayloadTooLargeError):
        validation.parse_secret({"value": "v" * 101})


def test_given_person_field_lists_then_every_schema_names_exactly_the_validators_fields() -> None:
    writer, reader = (tool.build_document(role)["components"] for role in ("writer", "reader"))
    fields = list(validation.PERSON_FIELDS)

    assert list(writer["schemas"]["Person"]["properties"]) == fields == writer["schemas"]["Person"]["required"]
    assert list(reader["schemas"]["PersonData"]["properties"]) == fields
    assert reader["schemas"]["PeopleSearch"]["properties"]["fields"]["items"]["enum"] == fields
    assert reader["parameters"]["fields"]["schema"]["items"]["enum"] == fields
    assert writer["schemas"]["Address"]["required"] == list(validation.ADDRESS_REQUIRED)


# --- errors: every code is documented under its status -----------------------------------------


def test_given_every_error_class_then_its_code_is_described_under_the_status_it_answers() -> None:
    responses = {name: response.description for name, response in error_schemas.error_responses().items()}
    classes = [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.PiiVaultError)]

    for cls in classes:
        status = contract.status_for(cls)
        if status != 500 and not issubclass(cls, error_schemas.ANSWERED_AS_NOT_FOUND):
            assert f"`{cls.code}`" in responses[error_schemas.response_name(status)], cls.__name__
    assert "`version_limit`" in responses["Error409"] and "`key_unavailable`" in responses["Error502"]
    assert "`forbidden`" not in " ".join(responses.values())  # a refused caller reads as an unknown route


def test_given_api_gateways_own_answers_then_each_code_is_described_under_its_status() -> None:
    responses = {name: response.description for name, response in error_schemas.error_responses().items()}

    for kind, answer in gateway_responses.gateway_responses().items():
        if answer.status is not None:
            assert f"`{answer.body['code']}`" in responses[error_schemas.response_name(answer.status)], kind
    assert responses["Error403"].startswith("`request_refused`: API Gateway refused")


def test_given_an_error_code_without_a_description_then_no_document_can_be_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(error_schemas.CODES, "version_limit")

    with pytest.raises(LookupError, match="error code version_limit has no description"):
        tool.build_document("writer")


def test_given_a_stage_then_its_document_holds_only_the_components_it_refers_to() -> None:
    for role in API_STAGE_NAMES:
        document = tool.build_document(role)
        text = json.dumps({"paths": document["paths"], "components": document["components"]})
        for kind in ("schemas", "parameters", "headers", "responses"):
            for name in document["components"][kind]:
                assert f'"#/components/{kind}/{name}"' in text, (role, kind, name)
    assert "SecretValue" not in tool.build_document("reader")["components"]["schemas"]
    assert "PersonView" not in tool.build_document("writer")["components"]["schemas"]


# --- cold start: the deployed functions never load the schemas ---------------------------------


@pytest.mark.parametrize("role", API_STAGE_NAMES)
def test_given_each_api_stage_when_its_app_is_imported_then_neither_schemas_nor_shapes_are_loaded(role: str) -> None:
    probe = "import sys, app; print(sorted(m for m in sys.modules if m.startswith('chalicelib.api')))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={"PII_VAULT_ROLE": role, "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(result.stdout.replace("'", '"'))

    assert "chalicelib.api.views" in loaded  # the probe sees the edge modules it loads
    assert not [name for name in loaded if name.startswith(("chalicelib.api.schemas", "chalicelib.api.shapes"))]
