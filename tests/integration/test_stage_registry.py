"""The stage registry is the truth: each stage reads exactly the settings it declares, and the
local stack gives each stage exactly those variables (its template gives the same: test_package.py).

Each stage is built from the local stack's environment for it (``tools.devstack.local_environment``)
and driven through its routes or functions on moto; every setting it reads is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.stages import STAGES, Stage, settings_for
from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from chalicelib.support.environment import ROLE_VARIABLE, VARIABLE, Key
from infra.local import bootstrap
from tests.integration.conftest import Signed
from tests.request_proof import PROOF
from tools import sample
from tools.devstack import local_environment
from tools.recorder import principals
from tools.streampoll import streams_client

REGION = "us-east-1"
PERSON = sample.person()
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def resources(aws_env: None) -> Iterator[dict[str, str]]:
    with mock_aws():
        kms, ddb = boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        yield bootstrap(kms, ddb)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """The settings read from now on, by stage (the ``role`` of the ``Settings`` read)."""
    read: dict[str, set[str]] = {}
    original = Settings.__getattribute__

    def recording(self: Settings, name: str) -> Any:
        if name in VARIABLE:
            read.setdefault(object.__getattribute__(self, "role"), set()).add(name)
        return original(self, name)

    monkeypatch.setattr(Settings, "__getattribute__", recording)
    return read


def _app(stage: Stage, resources: dict[str, str]) -> Any:
    env = {**local_environment(stage, resources), "AWS_DEFAULT_REGION": REGION}
    assert env[ROLE_VARIABLE] == stage.name
    return create_app(settings=settings_for(env))


def _drive(stage: Stage, client: Signed, writer: Signed | None) -> None:
    """Every path of the stage that reads settings: its routes, or its functions (one segment each)."""
    if stage.name == "writer":
        created = client.http.post("/customers/acme/people", body=json.dumps(PERSON), headers=JSON)
        assert created.status_code == 201
        headers = {**JSON, "Idempotency-Key": "k" * 22}
        assert client.http.post("/customers/acme/people", body=json.dumps(PERSON), headers=headers).status_code == 201
        assert client.http.put("/customers/acme/secrets/hook", body='{"value": "s"}', headers=JSON).status_code == 201
        person = json.loads(created.body)["id"]
        assert client.http.delete(f"/customers/acme/people/{person}").status_code == 204
        return
    assert writer is not None
    person = json.loads(writer.http.post("/customers/acme/people", body=json.dumps(PERSON), headers=JSON).body)["id"]
    writer.http.put("/customers/acme/secrets/hook", body='{"value": "s"}', headers=JSON)
    if stage.name in ("reader", "masked"):
        assert client.http.get(f"/customers/acme/people/{person}").status_code == 200
        assert client.http.get("/customers/acme/people?limit=5").status_code == 200
    if stage.name == "reader":
        search = client.http.post(
            "/customers/acme/people/search", body=json.dumps({"email": PERSON["email"]}), headers=JSON
        )
        assert search.status_code == 200
        assert client.http.get("/customers/acme/secrets/hook").status_code == 200
    elif stage.name == "indexer":
        arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="pii-vault")["Table"]
        streams = streams_client(principals.stage_session("indexer", REGION))  # as its event source mapping
        shard = streams.describe_stream(StreamArn=arn["LatestStreamArn"])["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=arn["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = [
            {**r, "eventSourceARN": arn["LatestStreamArn"]}
            for r in streams.get_records(ShardIterator=iterator)["Records"]
        ]
        client.lambda_.invoke("index_beacons", {"Records": _lambda_records(records)})
        report = client.lambda_.invoke("backfill", {"job": "b", "segment": 0, "total_segments": 1}).payload
        assert report["done"]
    elif stage.name == "offboard":
        for segment in (0, 1):
            event = {"job": "o", "customer_id": "acme", "segment": segment, "total_segments": 1}
            assert client.lambda_.invoke("offboard", event).payload["done"]
    elif stage.name == "rewrap":
        kms = boto3.client("kms", region_name=REGION)
        target = kms.create_key()["KeyMetadata"]["Arn"]
        PROOF.register_key(target, Key.DATA)  # deployed as the stack's new shared key (a move)
        event = {"job": "r", "segment": 0, "total_segments": 1, "source_key": _key_arn(kms), "target_key": target}
        assert client.lambda_.invoke("rewrap", event).payload["done"]


def _key_arn(kms: Any) -> str:
    return str(kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]["Arn"])


def _lambda_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stream records as Lambda delivers them (datetimes as epoch seconds)."""
    out = []
    for record in records:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if created is not None and not isinstance(created, int | float):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        out.append({**record, "dynamodb": dynamodb})
    return out


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_given_each_stage_on_the_local_stack_then_it_reads_exactly_the_settings_it_declares(
    stage: Stage, resources: dict[str, str], reads: dict[str, set[str]]
) -> None:
    writer = None if stage.name == "writer" else Signed(Client(_app(_stage("writer"), resources)), "writer")
    with Client(_app(stage, resources)) as client:
        _drive(stage, Signed(client, stage.name), writer)
    read = reads.get(stage.name, set())
    assert read == set(stage.settings), (
        f"{stage.name} reads {sorted(read - set(stage.settings))} undeclared, "
        f"declares {sorted(set(stage.settings) - read)} unread"
    )


def _stage(name: str) -> Stage:
    return next(s for s in STAGES if s.name == name)


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_given_each_stage_then_the_local_stack_sets_exactly_its_declared_variables(
    stage: Stage, resources: dict[str, str]
) -> None:
    env = local_environment(stage, resources)
    assert set(env) == {ROLE_VARIABLE, *(v.env for v in stage.variables)}
