"""Issue 24, item 3: unknown routes and methods, and refused callers, answer in the project's
error shape, and a refused caller cannot tell a known route from an unknown one.

Through ``chalice.test.Client`` (chalice's local gateway, as ``chalice local`` uses it) on
every API stage, with AWS clients that fail the test if touched. The deployed side is the
gateway responses the templates carry (``gateway_responses()``): the local answer for an
unknown route is checked equal to the MISSING_AUTHENTICATION_TOKEN one, byte for byte.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.api.gateway_responses import gateway_responses, not_found, openapi_extension
from chalicelib.stages import API_STAGE_NAMES as ROLES
from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from tests.integration.conftest import CALLERS, REGION

VALUES = {"customer_id": "acme", "person_id": "0" * 32, "secret_id": "hook"}
UNKNOWN = [
    ("GET", "/"),
    ("GET", "/nope"),
    ("POST", "/customers"),
    ("GET", "/customers/acme"),
    ("GET", "/customers/acme/people/" + "0" * 32 + "/history"),
    ("DELETE", "/customers/acme/a/b/c/d/e/f"),
    ("GET", "/customers/acme/people/../secrets/hook"),
]


class Tripwire:
    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"an AWS client was used ({attribute}) for a request no view serves")


def _app(role: str, **callers: Any) -> Any:
    settings = Settings(role, region=REGION, **callers)
    return create_app(settings=settings, kms_client=Tripwire(), dynamodb_client=Tripwire())


def _known(app: Any) -> list[tuple[str, str]]:
    return [
        (method, re.sub(r"\{(\w+)\}", lambda m: VALUES[m.group(1)], path))
        for path, methods in app.routes.items()
        for method in methods
    ]


def _answer(client: Client, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    body = b'{"email":"a@example.com"}' if method in ("POST", "PUT", "PATCH") else b""
    response = client.http.request(method, path, headers={"Content-Type": "application/json"}, body=body)
    return response.status_code, dict(response.headers), response.body


def _expected(kind: str) -> tuple[int, dict[str, str], bytes]:
    answer = gateway_responses()[kind]
    assert answer.status is not None
    return answer.status, answer.all_headers(), json.dumps(answer.body, separators=(",", ":")).encode()


@pytest.mark.parametrize("role", ROLES)
def test_given_an_unknown_route_then_every_api_stage_answers_the_gateways_json_404(role: str) -> None:
    with Client(_app(role, **CALLERS)) as client:
        for method, path in [*UNKNOWN, ("OPTIONS", "/customers/acme/people")]:
            assert _answer(client, method, path) == _expected("MISSING_AUTHENTICATION_TOKEN"), (method, path)


@pytest.mark.parametrize("role", ROLES)
def test_given_a_known_path_and_another_method_then_405_in_the_error_shape(role: str) -> None:
    app = _app(role, **CALLERS)
    with Client(app) as client:
        for path, methods in app.routes.items():
            concrete = re.sub(r"\{(\w+)\}", lambda m: VALUES[m.group(1)], path)
            other = next(m for m in ("PATCH", "GET", "POST", "DELETE") if m not in methods)
            status, headers, body = _answer(client, other, concrete)
            assert (status, json.loads(body)["code"]) == (405, "method_not_allowed"), (other, path)
            assert headers["Cache-Control"] == "no-store" and set(headers["Allow"].split(", ")) == set(methods)
            assert other not in json.loads(body)["message"]  # the message echoes no input


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "callers",
    [{}, {"allowed_callers": CALLERS["allowed_callers"]}, {"local_caller": CALLERS["local_caller"]}],
    ids=["nobody listed, no identity", "no identity", "an unlisted identity"],
)
def test_given_a_refused_caller_then_known_and_unknown_routes_answer_alike(role: str, callers: dict[str, Any]) -> None:
    """Unauthenticated or unlisted: every route of the stage, and every unknown one, gets the
    same status, headers and body, so the answer tells nothing about which routes exist."""
    app = _app(role, **callers)
    with Client(app) as client:
        answers = {(m, p): _answer(client, m, p) for m, p in [*_known(app), *UNKNOWN]}
    different = {route: answer for route, answer in answers.items() if answer != _expected("ACCESS_DENIED")}
    assert different == {}, role


def test_given_the_gateway_responses_then_refusals_equal_the_unknown_route_answer_and_defaults_keep_status() -> None:
    responses = gateway_responses()
    refusals = ("MISSING_AUTHENTICATION_TOKEN", "ACCESS_DENIED", "INVALID_SIGNATURE", "EXPIRED_TOKEN")

    assert all(responses[kind] == not_found() for kind in refusals)
    assert not_found().body == {"code": "not_found", "message": not_found().body["message"]}
    assert responses["DEFAULT_4XX"].status is None and responses["DEFAULT_5XX"].status is None
    assert responses["THROTTLED"].headers == {"Retry-After": "1"}
    for kind, answer in responses.items():
        assert answer.response_parameters()["gatewayresponse.header.Cache-Control"] == "'no-store'", kind
        (template,) = answer.response_templates().values()
        assert set(json.loads(template)) == {"code", "message"}, kind


def test_given_the_openapi_extension_then_it_states_each_gateway_response_as_api_gateway_reads_it() -> None:
    extension = openapi_extension()["x-amazon-apigateway-gateway-responses"]

    assert set(extension) == set(gateway_responses())
    assert extension["MISSING_AUTHENTICATION_TOKEN"] == {
        "statusCode": "404",
        "responseParameters": {"gatewayresponse.header.Cache-Control": "'no-store'"},
        "responseTemplates": {"application/json": json.dumps(not_found().body, separators=(",", ":"))},
    }
    assert "statusCode" not in extension["DEFAULT_4XX"] and "statusCode" not in extension["DEFAULT_5XX"]
