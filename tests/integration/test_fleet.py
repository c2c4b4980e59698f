"""The reader fleet's key table on moto: one KMS Decrypt per pool data key across reader
containers, entries a table writer cannot use, tenant-scoped keys never shared."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from chalicelib.support.environment import Key
from infra.local import bootstrap
from infra.specs import KEYS
from tests.integration.conftest import CALLERS, REGION, CallRecorder, body_of, send, stage_client
from tests.integration.test_api import PERSON
from tests.plaintext_guard import GUARD
from tests.tables import scan_all


class Fleet:
    def __init__(self, kms: Any, dynamodb: Any, resources: dict[str, str], scope: str) -> None:
        self.dynamodb, self.resources, self.scope = dynamodb, resources, scope
        self.kms_calls = CallRecorder()

    def app(self, role: str, **settings: Any) -> Any:
        return create_app(
            settings=Settings(
                role,
                region=REGION,
                key_scope=self.scope,
                fleet_mac_key_id=KEYS[Key.FLEET_MAC].alias(),
                **CALLERS,
                **settings,
            ),
            kms_client=self.kms_calls.attach(stage_client(role, "kms")),
            dynamodb_client=stage_client(role, "dynamodb"),
        )

    def fleet_items(self) -> list[dict[str, Any]]:
        return scan_all(self.dynamodb, self.resources["fleet_table_name"])


def _fleet(scope: str) -> Iterator[Fleet]:
    with mock_aws():
        kms, dynamodb = boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        yield Fleet(kms, dynamodb, bootstrap(kms, dynamodb), scope)
        for table in dynamodb.list_tables()["TableNames"]:
            GUARD.observe_items(f"moto table {table}", scan_all(dynamodb, table))


@pytest.fixture
def fleet(aws_env: None) -> Iterator[Fleet]:
    yield from _fleet("pool")


@pytest.fixture
def tenant_fleet(aws_env: None) -> Iterator[Fleet]:
    yield from _fleet("tenant")


def _write_people(fleet: Fleet, count: int) -> list[tuple[str, str]]:
    with Client(fleet.app("writer")) as writer:
        out = []
        for n in range(count):
            customer = f"tenant-{n % 3}"
            created = send(writer, "POST", f"/customers/{customer}/people", PERSON)
            out.append((customer, body_of(created)["id"]))
    fleet.kms_calls.take()
    return out


def test_given_three_reader_containers_then_each_pool_key_is_decrypted_once_for_the_fleet(fleet: Fleet) -> None:
    people = _write_people(fleet, 6)
    for _container in range(3):  # a new app = a new container: empty memory caches
        with Client(fleet.app("reader")) as reader:
            for customer, person_id in people:
                answer = send(reader, "GET", f"/customers/{customer}/people/{person_id}")
                assert (answer.status_code, body_of(answer)["data"]) == (200, PERSON)
    calls = fleet.kms_calls.take()
    assert calls.count("Decrypt") == 1  # one pool key, written by one warm writer
    assert calls.count("GenerateMac") == 3  # one sealing key per container per epoch
    [entry] = fleet.fleet_items()
    assert set(entry) == {"b", "r", "e", "x", "s"}  # the day the key was made, its reference, the sealed key
    assert entry["b"]["S"].startswith("d") and len(entry["r"]["B"]) == 16


def test_given_a_forged_fleet_entry_then_the_reader_asks_kms_and_serves_the_right_data(fleet: Fleet) -> None:
    [(customer, person_id)] = _write_people(fleet, 1)
    with Client(fleet.app("reader")) as reader:
        send(reader, "GET", f"/customers/{customer}/people/{person_id}")
    [entry] = fleet.fleet_items()
    entry["s"] = {"B": bytes(len(entry["s"]["B"]))}
    fleet.dynamodb.put_item(TableName=fleet.resources["fleet_table_name"], Item=entry)
    fleet.kms_calls.take()
    with Client(fleet.app("reader")) as reader:
        answer = send(reader, "GET", f"/customers/{customer}/people/{person_id}")
    assert (answer.status_code, body_of(answer)["data"]) == (200, PERSON)
    assert fleet.kms_calls.take().count("Decrypt") == 1


def test_given_tenant_scoped_keys_then_nothing_enters_the_fleet_table(tenant_fleet: Fleet) -> None:
    people = _write_people(tenant_fleet, 3)
    for _container in range(2):
        with Client(tenant_fleet.app("reader")) as reader:
            for customer, person_id in people:
                assert send(reader, "GET", f"/customers/{customer}/people/{person_id}").status_code == 200
    assert tenant_fleet.fleet_items() == []
    assert tenant_fleet.kms_calls.take().count("Decrypt") == 6  # 3 tenant keys x 2 containers


def test_given_the_fleet_lifetime_zero_then_the_table_is_not_used(fleet: Fleet) -> None:
    people = _write_people(fleet, 2)
    for _container in range(2):
        with Client(fleet.app("reader", fleet_key_lifetime_seconds=0)) as reader:
            for customer, person_id in people:
                assert send(reader, "GET", f"/customers/{customer}/people/{person_id}").status_code == 200
    assert fleet.fleet_items() == []
    assert fleet.kms_calls.take().count("Decrypt") == 2
