"""Input rules through the API: dot-segment secret ids, invisible characters in names and addresses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import HTTPResponse

from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from tests.integration.conftest import REGION, Stack, api_gateway_event, body_of, send, stage_client
from tests.integration.test_api import PERSON, create
from tests.integration.test_audit_api import SIGNER_ROLE


def _refused(response: HTTPResponse, field: str) -> dict[str, Any]:
    body: dict[str, Any] = body_of(response)
    assert response.status_code == 400, response.body
    assert body["code"] == "validation_error" and field in body["message"]
    return body


@pytest.mark.parametrize("secret_id", [".", ".."])
def test_given_a_dot_segment_secret_id_then_400_on_both_stages_and_nothing_stored(stack: Stack, secret_id: str) -> None:
    _refused(send(stack.writer, "PUT", f"/customers/acme/secrets/{secret_id}", {"value": "whsec_dot"}), "secret_id")
    _refused(send(stack.writer, "DELETE", f"/customers/acme/secrets/{secret_id}"), "secret_id")
    _refused(send(stack.reader, "GET", f"/customers/acme/secrets/{secret_id}"), "secret_id")
    _refused(send(stack.reader, "GET", f"/customers/acme/secrets/{secret_id}/versions"), "secret_id")
    assert stack.scan() == []


@pytest.mark.parametrize("secret_id", [".", ".."])
@pytest.mark.parametrize("role, method", [("writer", "PUT"), ("writer", "DELETE"), ("reader", "GET")])
def test_given_a_percent_encoded_dot_segment_as_api_gateway_decodes_it_then_400(
    stack: Stack, role: str, method: str, secret_id: str
) -> None:
    # /secrets/%2E%2E reaches the function as pathParameters {"secret_id": ".."}.
    app = create_app(
        settings=Settings(role, region=REGION, allowed_callers=(SIGNER_ROLE,)),
        kms_client=stage_client(role, "kms"),
        dynamodb_client=stage_client(role, "dynamodb"),
    )
    encoded = secret_id.replace(".", "%2E")
    event = api_gateway_event(
        method,
        "/customers/{customer_id}/secrets/{secret_id}",
        f"/customers/acme/secrets/{encoded}",
        {"customer_id": "acme", "secret_id": secret_id},
    )
    if method == "PUT":
        event["headers"]["content-type"] = "application/json"
        event["multiValueHeaders"]["content-type"] = ["application/json"]
        event["body"] = json.dumps({"value": "whsec_dot"})
    answer = app(event, None)
    assert answer["statusCode"] == 400 and "secret_id" in json.loads(answer["body"])["message"]
    assert stack.scan() == []


HIDDEN = {
    "NEL": "\x85",
    "RLO": "\u202e",
    "ZWSP": "\u200b",
    "ZWJ": "\u200d",
    "BOM": "\ufeff",
    "LSEP": "\u2028",
    "PSEP": "\u2029",
}
FIELDS = ["name", "surname", "address.line1", "address.line2", "address.city", "address.region", "address.postal_code"]


def _with_text(field: str, value: str) -> dict[str, Any]:
    if field.startswith("address."):
        return {**PERSON, "address": {**PERSON["address"], field.split(".", 1)[1]: value}}
    return {**PERSON, field: value}


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
@pytest.mark.parametrize("field", FIELDS)
def test_given_an_invisible_character_when_creating_then_400_naming_the_field_without_the_value(
    stack: Stack, field: str, char: str
) -> None:
    value = "H1B" + char + "5K9" if field.endswith("postal_code") else "Quen" + char + "neville"
    response = send(stack.writer, "POST", "/customers/acme/people", _with_text(field, value))
    body = _refused(response, field)
    assert value not in response.body.decode("utf-8") and char not in body["message"]
    assert stack.scan() == []


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_given_a_bidi_override_when_changing_a_person_then_400_and_the_record_unchanged(
    stack: Stack, method: str
) -> None:
    person_id = create(stack)
    before = stack.scan()
    body = {**PERSON, "surname": "evil\u202etxt.exe"} if method == "PUT" else {"surname": "evil\u202etxt.exe"}
    _refused(send(stack.writer, method, f"/customers/acme/people/{person_id}", body), "surname")
    assert stack.scan() == before
