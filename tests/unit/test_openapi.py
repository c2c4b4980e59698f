"""The published OpenAPI documents match the real routes, the real limits, and OpenAPI 3."""

from __future__ import annotations

import copy
import json

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from chalicelib import models, service
from chalicelib.api import openapi, writer
from tools import openapi as tool

ROLES = ("writer", "reader")


def _routes(role: str) -> set[tuple[str, str, str]]:
    return tool.app_operations(role)


@pytest.mark.parametrize("role", ROLES)
def test_given_each_role_when_documented_then_paths_methods_and_operation_ids_are_the_apps_routes(role: str) -> None:
    document = openapi.build_document(role)

    assert tool.document_operations(document) == _routes(role)
    assert tool.route_mismatch(role, document) == []


def test_given_a_route_missing_from_the_document_when_compared_then_the_mismatch_is_named() -> None:
    document = copy.deepcopy(openapi.build_document("writer"))
    del document["paths"][openapi.PERSON]["patch"]
    document["paths"]["/customers/{customer_id}/export"] = {"get": {"operationId": "export"}}

    problems = tool.route_mismatch("writer", document)

    assert problems == [
        "route not documented: /customers/{customer_id}/people/{person_id} PATCH patch_person",
        "documented but no such route: /customers/{customer_id}/export GET export",
    ]


def test_given_the_reader_document_when_listing_methods_then_it_has_no_write_method() -> None:
    paths = openapi.build_document("reader")["paths"]
    methods = {(path, method) for path, item in paths.items() for method in item}

    # The one POST is the search: read-only, a POST only so the email stays out of URLs.
    assert {method for _, method in methods} == {"get", "post"}
    assert {(p, m) for p, m in methods if m != "get"} == {("/customers/{customer_id}/people/search", "post")}


@pytest.mark.parametrize("role", ROLES)
def test_given_each_document_when_validated_then_it_is_valid_openapi_3(role: str) -> None:
    document = openapi.build_document(role)

    validate(json.loads(tool.render(document)))  # raises on any violation of the OpenAPI 3.0 schema
    assert document["openapi"].startswith("3.")


def test_given_an_invalid_document_when_validated_then_the_validator_rejects_it() -> None:
    document = copy.deepcopy(openapi.build_document("writer"))
    document["paths"][openapi.PEOPLE]["post"]["responses"]["201"].pop("description")

    with pytest.raises(OpenAPIValidationError, match="is not valid under any of the schemas"):
        validate(document)


def test_given_the_committed_documents_when_checked_then_they_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["--check"]) == 0, capsys.readouterr().err


def test_given_a_stale_document_when_checked_then_check_fails(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["--out-dir", str(tmp_path)]) == 0
    (tmp_path / "openapi-reader.json").write_text("{}\n", encoding="utf-8")

    assert tool.main(["--out-dir", str(tmp_path), "--check"]) == 1
    assert "openapi-reader.json is missing or out of date" in capsys.readouterr().err


def test_given_the_limits_in_the_document_when_compared_with_the_code_then_they_are_equal() -> None:
    assert openapi.PERSON_BODY_MAX_BYTES == writer.PERSON_BODY_MAX_BYTES
    assert openapi.SECRET_BODY_MAX_BYTES == writer.SECRET_BODY_MAX_BYTES
    assert openapi.MAX_PAGE_SIZE == service.MAX_PAGE_SIZE
    assert openapi.MAX_SECRET_VERSION == service.MAX_SECRET_VERSION


def test_given_the_person_schemas_when_compared_with_the_models_then_fields_and_required_parts_are_equal() -> None:
    schemas = openapi.build_document("writer")["components"]["schemas"]

    assert tuple(schemas["Person"]["properties"]) == models.PERSON_FIELDS
    assert tuple(schemas["Person"]["required"]) == models.PERSON_FIELDS
    assert set(schemas["Address"]["properties"]) == set(models.ADDRESS_REQUIRED + models.ADDRESS_OPTIONAL)
    assert tuple(schemas["Address"]["required"]) == models.ADDRESS_REQUIRED
    assert schemas["Person"]["additionalProperties"] is False


@pytest.mark.parametrize("role", ROLES)
def test_given_each_operation_when_documented_then_errors_use_the_error_schema_and_bodies_declare_413_415(role: str) -> None:
    document = openapi.build_document(role)
    responses = document["components"]["responses"]

    for item in document["paths"].values():
        for op in item.values():
            codes = set(op["responses"])
            assert {"400", "403", "429", "502"} <= codes, op["operationId"]
            if "requestBody" in op:
                assert {"413", "415"} <= codes, op["operationId"]
            for status, response in op["responses"].items():
                if int(status) >= 400 and status != "403":
                    name = response["$ref"].rsplit("/", 1)[1]
                    schema = responses[name]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (op["operationId"], status)


def test_given_write_operations_when_documented_then_if_match_and_idempotency_key_are_where_the_api_takes_them() -> None:
    paths = openapi.build_document("writer")["paths"]

    def headers(path: str, method: str) -> set[str]:
        return {p["$ref"].rsplit("/", 1)[1] for p in paths[path][method]["parameters"]} & {"If-Match", "Idempotency-Key"}

    assert headers(openapi.PEOPLE, "post") == {"Idempotency-Key"}
    assert headers(openapi.SECRET, "put") == {"Idempotency-Key"}
    for method in ("put", "patch", "delete"):
        assert headers(openapi.PERSON, method) == {"If-Match"}
