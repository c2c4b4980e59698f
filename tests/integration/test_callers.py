"""The per-stage caller allow-list, in the function (issue 12, 1b), and refusal auditing (4).

Every refusal is checked on the Lambda entry point with API Gateway's event shape (the
IAM authorizer's identity in ``requestContext.identity``), on both stages and every
route, with KMS and DynamoDB clients that fail the test if anything touches them: the
refusal (404, the answer for an unknown route) comes before any AWS call. Each refusal is
one ``request.refused`` audit event that names the caller, tenant and record id, and
never a value.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from chalicelib.api.gateway_responses import not_found
from chalicelib.stages import API_STAGE_NAMES
from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from tests.integration.conftest import REGION, Stack, api_gateway_event, body_of, send, stage_client
from tests.integration.test_api import PLAINTEXTS, create
from tools.devstack import LOCAL_CALLER

ACCOUNT = "111122223333"
LISTED = f"arn:aws:iam::{ACCOUNT}:role/billing-app"
LISTED_WITH_PATH = f"arn:aws:iam::{ACCOUNT}:role/teams/support/support-tools"
PERSON_ID = "0123456789abcdef0123456789abcdef"


class Tripwire:
    """Stands in for a boto3 client: any use at all fails the test."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"{self.name}.{attribute} used by a refused request")


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating any boto3 client (the lazy path a deployed function takes) fails the test too."""

    def refuse(service_name: str, _settings: Any) -> Any:
        raise AssertionError(f"a {service_name} client was created for a refused request")

    monkeypatch.setattr("chalicelib.stages.app._client", refuse)


def _app(role: str, allowed: tuple[str, ...] = (LISTED, LISTED_WITH_PATH), **settings: Any) -> Any:
    return create_app(
        settings=Settings(role, region=REGION, allowed_callers=allowed, **settings),
        kms_client=Tripwire("kms"),
        dynamodb_client=Tripwire("dynamodb"),
    )


def _routes(app: Any) -> list[tuple[str, str]]:
    return sorted((method, path) for path, entries in app.routes.items() for method in entries)


ROUTES = [(role, method, path) for role in API_STAGE_NAMES for method, path in _routes(_app(role))]
_PARAM_VALUES = {"customer_id": "acme", "person_id": PERSON_ID, "secret_id": "hook"}


def _event(method: str, resource: str, identity: dict[str, str] | None) -> dict[str, Any]:
    params = {name: _PARAM_VALUES[name] for name in re.findall(r"{(\w+)}", resource)}
    event = api_gateway_event(method, resource, resource.format(**params), params)
    event["requestContext"]["identity"] = {"sourceIp": "203.0.113.7", **(identity or {})}
    if method in ("POST", "PUT", "PATCH"):
        headers = {"content-type": "application/json", "idempotency-key": "3f2b9c1e-0d7a-4b8e-9f61-2c5d8e7a1b40"}
        event["headers"], event["multiValueHeaders"] = headers, {k: [v] for k, v in headers.items()}
        event["body"] = json.dumps({"name": PLAINTEXTS[0], "value": PLAINTEXTS[-1]})
    return event


def _refused_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.audit"]
    return [e for e in events if e["audit"] == "request.refused"]


def _session(role_name: str, account: str = ACCOUNT, partition: str = "aws", session: str = "s-1") -> dict[str, str]:
    return {
        "userArn": f"arn:{partition}:sts::{account}:assumed-role/{role_name}/{session}",
        "accountId": account,
        "caller": f"AROAEXAMPLE:{session}",
    }


UNLISTED = {
    "a session of an unlisted role": _session("other-app"),
    "a listed role name in another account": _session("billing-app", account="444455556666"),
    "a listed role name in another partition": _session("billing-app", partition="aws-cn"),
    "an IAM user named like a listed role": {"userArn": f"arn:aws:iam::{ACCOUNT}:user/billing-app"},
    "the listed role ARN itself (roles never sign; sessions do)": {"userArn": LISTED},
    "a federated user": {"userArn": f"arn:aws:sts::{ACCOUNT}:federated-user/billing-app"},
    "the account root": {"userArn": f"arn:aws:iam::{ACCOUNT}:root"},
    "a role name that only starts like a listed one": _session("billing-app-admin"),
    "an assumed-role ARN with trailing text": {"userArn": _session("billing-app")["userArn"] + "/x"},
    "a caller id without userArn": {"caller": "AROAEXAMPLE:s-1", "accountId": ACCOUNT},
    "no identity at all": {},
}


@pytest.mark.parametrize(("role", "method", "path"), ROUTES)
@pytest.mark.parametrize("who", list(UNLISTED))
def test_given_an_unlisted_caller_then_every_route_answers_as_an_unknown_route_before_any_aws_call(
    role: str, method: str, path: str, who: str, no_aws: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    identity = UNLISTED[who]

    response = _app(role)(_event(method, path, identity), None)

    # Issue 24: the refusal is the answer for an unknown route, so it reveals no route.
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == not_found().body
    assert {k: response["headers"][k] for k in not_found().all_headers()} == not_found().all_headers()
    (event,) = _refused_events(caplog)
    assert event["outcome"] == "forbidden"
    assert event["actor"]["principal"] == (identity.get("userArn") or identity.get("caller") or "anonymous")
    assert event["route"] == f"{method} {path}"
    assert event["customer_id"] == "acme"
    expected_ids = [_PARAM_VALUES[name] for name in ("person_id", "secret_id") if "{" + name + "}" in path]
    assert event["record_ids"] == expected_ids
    for value in PLAINTEXTS:
        assert value not in caplog.text and value not in response["body"]


@pytest.mark.parametrize("role", API_STAGE_NAMES)
def test_given_an_empty_list_then_even_a_session_of_a_role_listed_elsewhere_is_refused(role: str, no_aws: None) -> None:
    app = _app(role, allowed=())
    for method, path in _routes(app):
        response = app(_event(method, path, _session("billing-app")), None)
        assert (response["statusCode"], json.loads(response["body"])) == (404, not_found().body), (method, path)


def test_given_a_local_caller_then_it_never_replaces_an_identity_the_request_carries(
    no_aws: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Locally a request without identity becomes the local caller; one that names a principal keeps it."""
    caplog.set_level(logging.INFO)
    app = _app(
        "reader", allowed=(LISTED, "arn:aws:iam::000000000000:role/pii-vault-local-caller"), local_caller=LOCAL_CALLER
    )
    resource = "/customers/{customer_id}/people/{person_id}"

    response = app(_event("GET", resource, _session("other-app")), None)

    assert response["statusCode"] == 404
    assert _refused_events(caplog)[0]["actor"]["principal"] == _session("other-app")["userArn"]


@pytest.mark.parametrize(
    ("allowed", "identity"),
    [
        ((LISTED,), _session("billing-app")),
        ((LISTED,), _session("billing-app", session="another-session@example.com")),
        ((LISTED_WITH_PATH,), _session("support-tools")),  # the assumed-role ARN drops the path
        (("arn:aws-cn:iam::111122223333:role/billing-app",), _session("billing-app", partition="aws-cn")),
    ],
    ids=["session of a listed role", "any session name", "role with a path", "another partition, listed there"],
)
def test_given_a_session_of_a_listed_role_then_it_is_served(
    allowed: tuple[str, ...], identity: dict[str, str], stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    person_id = create(stack)
    app = create_app(
        settings=Settings("reader", region=REGION, allowed_callers=allowed),
        kms_client=stage_client("reader", "kms"),
        dynamodb_client=stage_client("reader", "dynamodb"),
    )
    event = _event("GET", "/customers/{customer_id}/people/{person_id}", identity)
    event["pathParameters"]["person_id"] = person_id
    caplog.set_level(logging.INFO)
    caplog.clear()

    response = app(event, None)

    assert response["statusCode"] == 200, response["body"]
    (audited,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.audit"]
    assert (audited["audit"], audited["actor"]["principal"]) == ("person.read", identity["userArn"])


def test_given_a_listed_caller_when_it_probes_a_missing_record_then_the_404_is_audited(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probes = [
        (stack.reader, "GET", f"/customers/acme/people/{PERSON_ID}", "person", PERSON_ID),
        (stack.reader, "GET", "/customers/acme/secrets/nothing-here", "secret", "nothing-here"),
        (stack.reader, "GET", "/customers/acme/secrets/nothing-here/versions", "secret", "nothing-here"),
        (stack.writer, "DELETE", f"/customers/acme/people/{PERSON_ID}", "person", PERSON_ID),
        (stack.writer, "PATCH", f"/customers/acme/people/{PERSON_ID}", "person", PERSON_ID),
    ]
    for client, method, path, _, _ in probes:
        body = {"name": PLAINTEXTS[0]} if method == "PATCH" else None
        assert send(client, method, path, body).status_code == 404, (method, path)

    events = _refused_events(caplog)

    assert [(e["outcome"], e["record_type"], e["record_ids"], e["customer_id"]) for e in events] == [
        ("not_found", kind, [record_id], "acme") for *_, kind, record_id in probes
    ]
    assert all(e["actor"]["principal"] == LOCAL_CALLER for e in events)
    assert PLAINTEXTS[0] not in caplog.text


def test_given_a_record_moved_under_another_id_when_read_then_the_integrity_failure_is_audited(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = create(stack), create(stack)
    table = stack.resources["table_name"]
    moved = stack.dynamodb.get_item(TableName=table, Key={"pk": {"S": "C#acme"}, "sk": {"S": f"P#{a}"}})["Item"]
    stack.dynamodb.put_item(TableName=table, Item={**moved, "sk": {"S": f"P#{b}"}})
    caplog.set_level(logging.INFO)

    response = send(stack.reader, "GET", f"/customers/acme/people/{b}")

    assert response.status_code == 502 and body_of(response)["code"] == "integrity_error"
    (event,) = _refused_events(caplog)
    assert (event["outcome"], event["customer_id"], event["record_ids"]) == ("integrity_error", "acme", [b])
    assert event["route"] == "GET /customers/{customer_id}/people/{person_id}"
    for value in PLAINTEXTS:
        assert value not in caplog.text


def test_given_a_listed_caller_when_served_then_no_refusal_is_audited(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    person_id = create(stack)
    assert send(stack.reader, "GET", f"/customers/acme/people/{person_id}").status_code == 200
    assert send(stack.reader, "GET", "/customers/acme/people?fields=email").status_code == 200

    assert _refused_events(caplog) == []
