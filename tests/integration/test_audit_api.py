"""Audit through the HTTP edge: the SigV4 identity API Gateway puts in the request
context reaches the audit event; chalice's sparse local context becomes the local caller."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from tests.integration.conftest import REGION, SIGNER, Stack, api_gateway_event, body_of, send, stage_client
from tests.integration.test_api import PERSON as PLAINTEXT_PERSON
from tests.integration.test_api import PLAINTEXTS, create
from tools.devstack import LOCAL_CALLER

SIGNER_ROLE = "arn:aws:iam::111122223333:role/support-tools"


def _audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.audit"]


def test_given_a_signed_read_then_one_audit_event_names_the_signer_and_no_value(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    person_id = create(stack)
    reader_app = create_app(
        settings=Settings("reader", region=REGION, allowed_callers=(SIGNER_ROLE,)),
        kms_client=stage_client("reader", "kms"),
        dynamodb_client=stage_client("reader", "dynamodb"),
    )
    caplog.set_level(logging.INFO)
    caplog.clear()

    response = reader_app(
        api_gateway_event(
            "GET",
            "/customers/{customer_id}/people/{person_id}",
            f"/customers/acme/people/{person_id}",
            {"customer_id": "acme", "person_id": person_id},
        ),
        None,
    )

    assert response["statusCode"] == 200
    (event,) = _audit_events(caplog)
    assert event["audit"] == "person.read"
    assert event["actor"] == {
        "principal": SIGNER,
        "account_id": "111122223333",
        "source_ip": "203.0.113.7",
        "request_id": "c0ffee00-0000-4000-8000-000000000001",
    }
    assert (event["customer_id"], event["record_ids"]) == ("acme", [person_id])
    assert event["fields"] == ["address", "dob", "email", "name", "surname"]
    assert "ASIAEXAMPLE" not in caplog.text
    for value in PLAINTEXTS:
        assert value not in caplog.text


def test_given_local_requests_then_each_write_read_and_probe_is_audited_once_as_the_local_caller(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    person_id = create(stack)
    send(stack.reader, "GET", f"/customers/acme/people/{person_id}?fields=email")
    send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": "whsec_audit"})
    send(stack.reader, "GET", "/customers/acme/secrets/hook")
    assert send(stack.reader, "GET", "/customers/acme/people/" + "0" * 32).status_code == 404

    events = _audit_events(caplog)

    assert [(e["audit"], e["fields"], e.get("outcome")) for e in events] == [
        ("person.create", ["address", "dob", "email", "name", "surname"], None),
        ("person.read", ["email"], None),
        ("secret.put", ["value"], None),
        ("secret.read", ["value"], None),
        ("request.refused", [], "not_found"),
    ]
    assert events[-1]["record_ids"] == ["0" * 32]
    assert all(e["actor"]["principal"] == LOCAL_CALLER for e in events)
    assert "whsec_audit" not in caplog.text
    assert body_of(send(stack.reader, "GET", "/customers/acme/secrets/hook"))["value"] == "whsec_audit"


def test_given_a_deployed_stage_when_a_person_is_created_then_location_includes_the_stage(stack: Stack) -> None:
    writer_app = create_app(
        settings=Settings("writer", region=REGION, allowed_callers=(SIGNER_ROLE,)),
        kms_client=stage_client("writer", "kms"),
        dynamodb_client=stage_client("writer", "dynamodb"),
    )
    event = api_gateway_event(
        "POST", "/customers/{customer_id}/people", "/customers/acme/people", {"customer_id": "acme"}
    )
    event["headers"] = {"content-type": "application/json"}
    event["multiValueHeaders"] = {"content-type": ["application/json"]}
    event["body"] = json.dumps({**PLAINTEXT_PERSON})

    response = writer_app(event, None)

    assert response["statusCode"] == 201
    person_id = json.loads(response["body"])["id"]
    assert response["headers"]["Location"] == f"/api/customers/acme/people/{person_id}"
