"""moto in process: a KMS key and the table, both apps built with create_app in one process.

Each app gets its own boto3 clients, signed with its stage's credentials (as each stage's role
signs on AWS: tests/request_proof.py judges every request by the signer's policies), and a
recorder, so tests can count (and name) the KMS operations each role performs. Setup code
signs as the operator (``aws_env``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

import boto3
import pytest
from chalice.test import Client, HTTPResponse
from moto import mock_aws

from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from infra.local import bootstrap
from tests.plaintext_guard import GUARD
from tests.tables import scan_all
from tools.devstack import LOCAL_CALLER, LOCAL_CALLER_ROLE
from tools.recorder import principals

REGION = "us-east-1"


class CallerSettings(TypedDict):
    allowed_callers: tuple[str, ...]
    local_caller: str


# As in the local stack: chalice.test.Client requests carry no identity, so they are
# served as the local caller, whose role is the one on the list.
CALLERS: CallerSettings = {"allowed_callers": (LOCAL_CALLER_ROLE,), "local_caller": LOCAL_CALLER}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # mock_aws does not intercept calls when AWS_ENDPOINT_URL is set (e.g. from `make dev`).
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in principals.environment(principals.OPERATOR).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def stage_client(stage: str, service: str) -> Any:
    """A client signing as ``stage`` (its requests are judged by that stage's policies)."""
    return principals.stage_session(stage, REGION).client(service)


class Signed:
    """A chalice.test.Client (or one of its parts) whose every call runs with ``stage``'s credentials
    in the environment, as each function runs in its own on AWS: an app that builds its own clients
    (``create_app`` without injected ones) builds them signing as its stage."""

    def __init__(self, target: Any, stage: str) -> None:
        self._target, self._stage = target, stage

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in ("http", "lambda_", "events"):
            return Signed(value, self._stage)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with signing_as(self._stage):
                return value(*args, **kwargs)

        return call


@contextlib.contextmanager
def signing_as(principal: str) -> Iterator[None]:
    """Clients made from the environment inside (a CLI run in process) sign as ``principal``.
    Each principal is its own container on AWS: the stages' cached botocore session
    (chalicelib.stages.app) is dropped, so an app builds its clients with these credentials."""
    from chalicelib.stages import app

    app._session.cache_clear()
    saved = {name: os.environ.get(name) for name in principals.environment(principal)}
    os.environ.update(principals.environment(principal))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class CallRecorder:
    """Records the operation name of every API call a boto3 client makes."""

    operations: list[str] = field(default_factory=list)

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self._record)
        return client

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    def take(self) -> list[str]:
        taken, self.operations = self.operations, []
        return taken


@dataclass
class Stack:
    kms: Any
    dynamodb: Any
    resources: dict[str, str]
    writer: Client
    reader: Client
    writer_kms: CallRecorder
    reader_kms: CallRecorder
    writer_ddb: CallRecorder
    reader_ddb: CallRecorder
    writer_clients: dict[str, Any]
    reader_clients: dict[str, Any]
    # The masked stage (docs/masked.md), on clients of its own.
    masked: Client
    masked_kms: CallRecorder
    masked_ddb: CallRecorder
    masked_clients: dict[str, Any]

    def scan(self) -> list[dict[str, Any]]:
        return scan_all(self.dynamodb, self.resources["table_name"])


# The plain ``stack`` runs with the data key caches off, so one write is one Encrypt and
# one read one Decrypt; ``cached_stack`` uses the shipped default bounds.
class StackSettings(TypedDict, total=False):
    """What a stack fixture sets on every stage's Settings (besides CALLERS)."""

    writer_key_cache_seconds: int
    writer_key_cache_max_records: int
    reader_key_cache_seconds: int
    reader_key_cache_max_entries: int
    key_scope: str


NO_KEY_CACHE: StackSettings = {
    "writer_key_cache_seconds": 0,
    "writer_key_cache_max_records": 0,
    "reader_key_cache_seconds": 0,
    "reader_key_cache_max_entries": 0,
}


@pytest.fixture
def stack(aws_env: None) -> Iterator[Stack]:
    yield from _stack(NO_KEY_CACHE)


@pytest.fixture
def cached_stack(aws_env: None) -> Iterator[Stack]:
    yield from _stack({})


@pytest.fixture
def tenant_scoped_stack(aws_env: None) -> Iterator[Stack]:
    """Shipped cache bounds, data keys per tenant (PII_VAULT_KEY_SCOPE=tenant)."""
    yield from _stack({"key_scope": "tenant"})


def _stack(cache_settings: StackSettings) -> Iterator[Stack]:
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        resources = bootstrap(kms, dynamodb)
        writer_kms, reader_kms, writer_ddb, reader_ddb = (CallRecorder() for _ in range(4))
        masked_kms, masked_ddb = CallRecorder(), CallRecorder()

        clients = {
            role: {
                "kms": kms_rec.attach(stage_client(role, "kms")),
                "dynamodb": ddb_rec.attach(stage_client(role, "dynamodb")),
            }
            for role, kms_rec, ddb_rec in (
                ("writer", writer_kms, writer_ddb),
                ("reader", reader_kms, reader_ddb),
                ("masked", masked_kms, masked_ddb),
            )
        }

        def app(role: str) -> Any:
            return create_app(
                settings=Settings(role, region=REGION, **CALLERS, **cache_settings),
                kms_client=clients[role]["kms"],
                dynamodb_client=clients[role]["dynamodb"],
            )

        with Client(app("writer")) as writer, Client(app("reader")) as reader, Client(app("masked")) as masked:
            stack = Stack(
                kms,
                dynamodb,
                resources,
                writer,
                reader,
                writer_kms,
                reader_kms,
                writer_ddb,
                reader_ddb,
                clients["writer"],
                clients["reader"],
                masked,
                masked_kms,
                masked_ddb,
                clients["masked"],
            )
            yield stack
        # Every attribute this test left in any table goes to the no-plaintext guard.
        for table in dynamodb.list_tables()["TableNames"]:
            GUARD.observe_items(f"moto table {table}", scan_all(dynamodb, table))


JSON = {"Content-Type": "application/json"}


def send(client: Client, method: str, path: str, body: Any = None, **headers: str) -> HTTPResponse:
    """One request; ``body`` is JSON-encoded unless it is already bytes/str."""
    payload = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    response: HTTPResponse = getattr(client.http, method.lower())(path, body=payload, headers={**JSON, **headers})
    return response


def body_of(response: HTTPResponse) -> Any:
    return json.loads(response.body) if response.body else None


SIGNER = "arn:aws:sts::111122223333:assumed-role/support-tools/alice"


def api_gateway_event(method: str, resource: str, path: str, params: dict[str, str]) -> dict[str, Any]:
    """A REST API proxy event as API Gateway sends it after the IAM authorizer accepted a signature."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"accept": "application/json"},
        "multiValueHeaders": {"accept": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "requestId": "c0ffee00-0000-4000-8000-000000000001",
            "identity": {
                "accountId": "111122223333",
                "caller": "AROAEXAMPLE:alice",
                "userArn": SIGNER,
                "accessKey": "ASIAEXAMPLE",
                "sourceIp": "203.0.113.7",
            },
        },
        "body": None,
        "isBase64Encoded": False,
    }
