"""schemathesis against both local endpoints, driven by their committed OpenAPI documents.

Every generated request (coverage + fuzzing phases, positive and negative data, fixed
seed, derandomized) must get a non-5xx answer whose status, content type, headers and
body are the ones documented; schema-valid requests must be accepted (positive data
acceptance: the documents promise no more than the API takes) and schema-invalid ones
refused. Another seed: PII_VAULT_FUZZ_SEED=<n> make test. Path parameters are often steered to seeded records so
that requests reach the handlers' success paths, not only 404. The counts are printed
at the end of the session; the explicit cases below add the hostile bodies a generator
does not produce: huge, deeply nested, non-UTF-8, wrong content type.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, HookContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from chalicelib.api import contract
from chalicelib.stages import API_STAGE_NAMES
from tests.e2e.conftest import LocalStack

DOCS = Path(__file__).resolve().parents[2] / "docs"
SEED = int(os.environ.get("PII_VAULT_FUZZ_SEED", "20261124"))
MAX_EXAMPLES = 100  # per operation in the fuzzing phase; the coverage phase adds its own cases
MIN_REQUESTS_PER_OPERATION = 75  # a complete run of a stage sends at least this many per operation
TIMEOUT = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
CONFIG = {
    "seed": SEED,
    "generation": {"mode": "all", "deterministic": True, "max-examples": MAX_EXAMPLES, "database": "none"},
    "phases": {
        "examples": {"enabled": False},
        "stateful": {"enabled": False},
        # TRACE/QUERY never reach the app under `chalice local` (http.server answers 501 itself).
        "coverage": {"unexpected-methods": ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]},
    },
    "checks": {
        "enabled": False,
        **{check.__name__: {"enabled": True} for check in CHECKS},
        # schemathesis' defaults plus 413: an over-long value is "too large", not "invalid".
        "negative_data_rejection": {
            "enabled": True,
            "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429],
        },
        # Schema-valid requests may still meet the state: an id that does not exist (404), contention
        # (409), an If-Match naming another version (412), an Idempotency-Key used with another body (422).
        "positive_data_acceptance": {"enabled": True, "expected-statuses": ["2xx", 404, 409, 412, 422, 429]},
    },
    "request-timeout": TIMEOUT,
}

SEEDED_PEOPLE: list[dict[str, Any]] = [
    {
        "name": "Zoë",
        "surname": "Ødegård-Łukasiewicz",
        "email": "zoe@example.org",
        "dob": "1900-01-01",
        "address": {"line1": "1 Rue de l'Église", "city": "Besançon", "postal_code": "25000", "country": "FR"},
    },
    {
        "name": "Kwame",
        "surname": "Mensah",
        "email": "kwame.mensah@example.com",
        "dob": "1999-12-31",
        "address": {
            "line1": "12 Ring Road",
            "line2": "Apartment 4",
            "city": "Accra",
            "postal_code": "GA-123",
            "region": "Greater Accra",
            "country": "GH",
        },
    },
]
SEEDED_SECRET = "fuzz.secret"
ID_PATTERNS = {
    "customer_id": re.compile(r"[A-Za-z0-9_-]{1,64}"),
    "person_id": re.compile(r"[0-9a-f]{32}"),
    "secret_id": re.compile(r"(?!\.\.?$)[A-Za-z0-9_.-]{1,128}"),  # . and .. are refused (models.secret_id)
}


def _doc(role: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DOCS / f"openapi-{role}.json").read_text(encoding="utf-8"))
    return doc


def _local_doc(role: str) -> dict[str, Any]:
    """The document minus SigV4: `chalice local` does not enforce it (by design: SECURITY.md, "Out of scope")."""
    doc = _doc(role)
    del doc["security"]
    return doc


def _bit(value: object) -> bool:
    """A deterministic coin from the generated value itself (derandomized runs stay reproducible)."""
    return hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).digest()[0] % 2 == 0


class Seeded:
    """Records created before fuzzing, per stage, and the number of requests sent."""

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.person_ids: list[str] = []
        self.page_tokens: list[str] = []
        self.requests = 0
        self.statuses: dict[int, int] = {}
        self.operations_run: set[str] = set()

    def steer(self, params: dict[str, Any]) -> dict[str, Any]:
        """Point about half of the valid ids at seeded records; invalid ones stay as generated."""
        out = dict(params)
        if not all(isinstance(v, str) and ID_PATTERNS[k].fullmatch(v) for k, v in out.items() if k in ID_PATTERNS):
            return out
        if "customer_id" in out and _bit(out["customer_id"]):
            out["customer_id"] = self.customer_id
            if "person_id" in out and self.person_ids and _bit(out["person_id"] + "p"):
                out["person_id"] = self.person_ids[len(out["person_id"]) % len(self.person_ids)]
            if "secret_id" in out and _bit(out["secret_id"] + "s"):
                out["secret_id"] = SEEDED_SECRET
        return out


def _seed(stack: LocalStack, seeded: Seeded) -> None:
    customer_id = seeded.customer_id
    for person in SEEDED_PEOPLE:
        response = requests.post(f"{stack.writer_url}/customers/{customer_id}/people", json=person, timeout=TIMEOUT)
        assert response.status_code == 201, response.text
        seeded.person_ids.append(response.json()["id"])
    reader_url = stack.reader_url
    page = requests.get(f"{reader_url}/customers/{customer_id}/people", params={"limit": 1}, timeout=TIMEOUT)
    assert page.status_code == 200 and page.json()["next"], page.text
    seeded.page_tokens.append(page.json()["next"])
    for value in ("first value", "second value ✓"):
        response = requests.put(
            f"{stack.writer_url}/customers/{customer_id}/secrets/{SEEDED_SECRET}",
            json={"value": value},
            timeout=TIMEOUT,
        )
        assert response.status_code == 201, response.text


# Built at import (schemathesis parametrizes at collection); filled by the fixtures below.
_SEEDED = {role: Seeded(f"fuzz-{role}") for role in API_STAGE_NAMES}

# `format: page-token`: a token is valid only as the API issued it, so valid ones are real ones.
# `format: page-token`: a token is valid only as the API issued it, so a valid one is a real one,
# put in place of this placeholder when the case is sent (cases are drawn before seeding, at collection).
PAGE_TOKEN = "<page-token>"
schemathesis.openapi.format("page-token", st.just(PAGE_TOKEN))


def _schema(role: str) -> OpenApiSchema:
    seeded = _SEEDED[role]
    # The real base URL is only known once local_stack runs; each call passes it.
    config = schemathesis.Config.from_dict({**CONFIG, "base-url": "http://127.0.0.1:9"})
    schema = schemathesis.openapi.from_dict(_local_doc(role), config=config)

    # Registered by calls, not as decorators: schema.hook is typed as returning a bare Callable.
    def map_path_parameters(context: HookContext, path_parameters: dict[str, Any]) -> dict[str, Any]:
        return seeded.steer(path_parameters)

    def map_case(context: HookContext, case: Case[Any]) -> Case[Any]:
        """What JSON Schema cannot say, for schema-valid cases: ids= goes without limit= and next=."""
        meta = case.meta
        if meta is not None and meta.generation.mode.is_positive and case.query and "ids" in case.query:
            case.query = {name: value for name, value in case.query.items() if name not in ("limit", "next")}
        return case

    def after_call(context: HookContext, case: Case[Any], response: Response) -> None:
        seeded.requests += 1
        seeded.statuses[response.status_code] = seeded.statuses.get(response.status_code, 0) + 1
        seeded.operations_run.add(case.operation.label)

    for hook in (map_path_parameters, map_case, after_call):
        schema.hook(hook)
    return schema


FuzzTest = Callable[[Case[Any], str], None]


def _parametrize(schema: OpenApiSchema) -> Callable[[FuzzTest], FuzzTest]:
    """``schema.parametrize()`` typed: it returns the test wrapped, signature unchanged (schemathesis
    types it as a bare Callable)."""
    decorator: Callable[[FuzzTest], FuzzTest] = schema.parametrize()
    return decorator


@pytest.fixture(scope="module")
def seeded_writer(local_stack: LocalStack) -> str:
    _seed(local_stack, _SEEDED["writer"])
    return local_stack.writer_url


@pytest.fixture(scope="module")
def seeded_reader(local_stack: LocalStack) -> str:
    _seed(local_stack, _SEEDED["reader"])
    return local_stack.reader_url


@pytest.fixture(scope="module")
def seeded_masked(local_stack: LocalStack) -> str:
    _seed(local_stack, _SEEDED["masked"])
    return local_stack.masked_url


@pytest.fixture(scope="module", autouse=True)
def fuzz_totals(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the request counts; a complete run of a stage must have sent a few hundred."""
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    short: list[str] = []
    for role, seeded in _SEEDED.items():
        if not seeded.requests:
            continue
        line = (
            f"schemathesis {role}: {seeded.requests} requests over {len(seeded.operations_run)} operations, "
            f"statuses {dict(sorted(seeded.statuses.items()))}"
        )
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line("\n" + line)
        operations = len(_operations(role))
        least = MIN_REQUESTS_PER_OPERATION * operations
        if len(seeded.operations_run) == operations and seeded.requests < least:
            short.append(f"{role}: {seeded.requests} < {least}")
        assert not any(status >= 500 for status in seeded.statuses), line
    assert not short, f"too few fuzz requests: {short}; raise MAX_EXAMPLES"


def _operations(role: str) -> list[tuple[str, str]]:
    return [(path, method) for path, item in _doc(role)["paths"].items() for method in item]


writer = _schema("writer")
reader = _schema("reader")
masked = _schema("masked")


def _call_and_validate(case: Case[Any], base_url: str, seeded: Seeded) -> None:
    if case.query and case.query.get("next") == PAGE_TOKEN:
        case.query = {**case.query, "next": seeded.page_tokens[0]}
    checks = CHECKS
    meta = case.meta
    if meta is not None and any(not part.mode.is_positive for part in meta.components.values()):
        # schemathesis' coverage phase can label a case positive while one of its parts is a negative
        # value (seen: an If-Match of 0 beside a valid body); such a case promises no acceptance.
        checks = [check for check in CHECKS if check is not positive_data_acceptance]
    case.call_and_validate(base_url=base_url, checks=checks)


@_parametrize(writer)
def test_given_writer_openapi_when_fuzzed_then_no_5xx_and_every_answer_is_documented(
    case: Case[Any], seeded_writer: str
) -> None:
    _call_and_validate(case, seeded_writer, _SEEDED["writer"])


@_parametrize(reader)
def test_given_reader_openapi_when_fuzzed_then_no_5xx_and_every_answer_is_documented(
    case: Case[Any], seeded_reader: str
) -> None:
    _call_and_validate(case, seeded_reader, _SEEDED["reader"])


@_parametrize(masked)
def test_given_masked_openapi_when_fuzzed_then_no_5xx_and_every_answer_is_documented(
    case: Case[Any], seeded_masked: str
) -> None:
    _call_and_validate(case, seeded_masked, _SEEDED["masked"])


# -- explicit hostile bodies, validated against the same documents ------------------------

HOSTILE_CHECKS = [c for c in CHECKS if c is not negative_data_rejection]
BODY_OPERATIONS = [  # (path, method, body size limit)
    (path, method, op.max_body_bytes) for (path, method), op in contract.OPERATIONS.items() if op.body is not None
]


def _nested(depth: int) -> bytes:
    return b'{"name":' * depth + b"1" + b"}" * depth


def _hostile_bodies(limit: int) -> list[tuple[str, bytes, str, int, str]]:
    """(label, body, content type, expected status, expected code)."""
    json_type = "application/json"
    return [
        ("just over the limit", b'{"value":"' + b"a" * limit + b'"}', json_type, 413, "payload_too_large"),
        ("8 MiB", b"[" + b"0," * (4 * 1024 * 1024) + b"0]", json_type, 413, "payload_too_large"),
        ("deeply nested object", _nested((limit - 16) // 9), json_type, 400, "malformed_json"),
        ("deeply nested array", b"[" * (limit // 2 - 8) + b"]" * (limit // 2 - 8), json_type, 400, "malformed_json"),
        ("non-UTF-8 bytes", b'{"name":"\xff\xfe\xc3\x28","value":"\xed\xa0\x80"}', json_type, 400, "malformed_json"),
        ("UTF-16 JSON", '{"value":"x"}'.encode("utf-16"), json_type, 400, "malformed_json"),
        ("latin-1 declared", b'{"name":"Ren\xe9e"}', "application/json; charset=latin-1", 400, "malformed_json"),
        ("NaN", b'{"value":NaN}', json_type, 400, "malformed_json"),
        ("duplicate keys", b'{"value":"a","value":"b"}', json_type, 400, "malformed_json"),
        ("empty body", b"", json_type, 400, "malformed_json"),
        ("text/plain", b'{"value":"x"}', "text/plain", 415, "unsupported_media_type"),
        ("form", b"value=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("xml", b"<value>x</value>", "application/xml", 415, "unsupported_media_type"),
        ("multipart", b"--b\r\n\r\nx\r\n--b--", "multipart/form-data; boundary=b", 415, "unsupported_media_type"),
    ]


def _stored_items(stack: LocalStack, customer_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.dynamodb.query(
        TableName=stack.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"C#{customer_id}"}},
    )["Items"]
    return items


@pytest.mark.parametrize("path, method, limit", BODY_OPERATIONS, ids=[f"{m} {p}" for p, m, _ in BODY_OPERATIONS])
def test_given_hostile_bodies_when_writing_then_documented_4xx_and_nothing_is_stored(
    local_stack: LocalStack, customer_id: str, path: str, method: str, limit: int
) -> None:
    # Body routes are the writer's, and the reader's search (a POST so the email stays out of URLs).
    on_writer = (path, method.lower()) in _operations("writer")
    operation = (writer if on_writer else reader)[path][method]
    params = {"customer_id": customer_id, "person_id": "a" * 32, "secret_id": "hostile"}
    params = {name: value for name, value in params.items() if "{" + name + "}" in path}
    url = (local_stack.writer_url if on_writer else local_stack.reader_url) + path.format(**params)
    answers: dict[str, tuple[int, str]] = {}

    for label, body, content_type, status, code in _hostile_bodies(limit):
        response = requests.request(method, url, data=body, headers={"Content-Type": content_type}, timeout=TIMEOUT)
        case = operation.Case(path_parameters=params, headers={"Content-Type": content_type}, media_type=content_type)
        case.validate_response(response, checks=HOSTILE_CHECKS)
        answers[label] = (response.status_code, response.json()["code"])
        assert answers[label] == (status, code), (label, response.text[:200])

    assert len(answers) == len(_hostile_bodies(limit))
    assert _stored_items(local_stack, customer_id) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml"])
def test_given_reader_when_request_declares_a_non_json_body_then_415_as_documented(
    local_stack: LocalStack, customer_id: str, content_type: str
) -> None:
    path = "/customers/{customer_id}/people"
    response = requests.get(
        f"{local_stack.reader_url}/customers/{customer_id}/people",
        data=b"\xff\xfe not json",
        headers={"Content-Type": content_type},
        timeout=TIMEOUT,
    )

    reader[path]["GET"].Case(path_parameters={"customer_id": customer_id}).validate_response(
        response, checks=HOSTILE_CHECKS
    )
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")


def test_given_an_internationalised_email_when_read_back_then_the_answer_conforms_to_the_document(
    local_stack: LocalStack, customer_id: str
) -> None:
    """Regression: the reader returned addresses such as ü@bücher.de that `format: email` forbids."""
    person = {**SEEDED_PEOPLE[1], "email": "jürgen@bücher.example"}
    created = requests.post(f"{local_stack.writer_url}/customers/{customer_id}/people", json=person, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    person_id = created.json()["id"]
    params = {"customer_id": customer_id, "person_id": person_id}

    response = requests.get(f"{local_stack.reader_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)

    assert response.json()["data"]["email"] == "jürgen@bücher.example"
    reader["/customers/{customer_id}/people/{person_id}"]["GET"].Case(path_parameters=params).validate_response(
        response, checks=HOSTILE_CHECKS
    )


def test_given_generated_valid_people_when_created_then_the_reader_returns_them_as_documented(
    local_stack: LocalStack, customer_id: str
) -> None:
    """Round trip: what the writer accepts, the reader must return within its document."""
    create = writer["/customers/{customer_id}/people"]["POST"]
    read = reader["/customers/{customer_id}/people/{person_id}"]["GET"]
    created: list[str] = []

    @hypothesis.settings(
        max_examples=80,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=create.as_strategy(path_parameters={"customer_id": customer_id}))
    def round_trip(case: Case[Any]) -> None:
        response = case.call(base_url=local_stack.writer_url)
        case.validate_response(response, checks=HOSTILE_CHECKS)
        if response.status_code != 201:
            return
        person_id = response.json()["id"]
        answer = requests.get(f"{local_stack.reader_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        assert isinstance(case.body, dict), case.body  # a 201: the writer took a JSON object
        assert set(answer.json()["data"]) == set(case.body), "the reader must return every field sent"
        read.Case(path_parameters={"customer_id": customer_id, "person_id": person_id}).validate_response(
            answer, checks=HOSTILE_CHECKS
        )
        created.append(person_id)

    round_trip()

    assert len(created) >= 20, f"only {len(created)} generated people were valid; the round trip proves little"
