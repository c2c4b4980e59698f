"""A stage builds one boto3 client per AWS service and container, shared by all its parts.

Client creation is cold-start work (endpoint resolution, service model loading): the
writer's sealer, tenant-key routing, store, erasure ledger and idempotency layer, or the
reader's fleet table, routing, beacons and store, must not each make their own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

import chalicelib.stages.app
from chalicelib.stages import API_STAGE_NAMES
from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from infra.local import bootstrap
from tests.integration.conftest import CALLERS, JSON, REGION, send, signing_as
from tests.integration.test_api import PERSON

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("role", API_STAGE_NAMES)
def test_given_a_stage_when_it_serves_then_it_made_one_client_per_service(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    made: Counter[str] = Counter()
    real = chalicelib.stages.app._client

    def counting(service_name: str, settings: Settings) -> Any:
        made[service_name] += 1
        return real(service_name, settings)

    monkeypatch.setattr(chalicelib.stages.app, "_client", counting)
    with mock_aws():
        bootstrap(boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION))
        settings = Settings(role, region=REGION, **CALLERS)
        # Each app builds its own clients from the environment, as deployed: there, its role's credentials.
        with (
            signing_as("writer"),
            Client(create_app("writer", settings=Settings("writer", region=REGION, **CALLERS))) as writer,
        ):
            created = send(writer, "POST", "/customers/acme/people", PERSON, **JSON)
        person = created.json_body["id"]
        made.clear()
        with signing_as(role), Client(create_app(role, settings=settings)) as client:
            if role == "writer":
                path = f"/customers/acme/people/{person}"
                assert (
                    send(client, "PATCH", path, {"name": "Ann"}, **{**JSON, "Idempotency-Key": "k1"}).status_code == 200
                )
                assert send(client, "POST", "/customers/acme/people", PERSON, **JSON).status_code == 201
            else:
                assert send(client, "GET", f"/customers/acme/people/{person}").status_code == 200
                assert send(client, "GET", f"/customers/acme/people?ids={person}").status_code == 200

    assert made == Counter({"kms": 1, "dynamodb": 1})
