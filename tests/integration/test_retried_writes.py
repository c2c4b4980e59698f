"""A write whose first answer is lost (issue 19): botocore sends it again, the retry meets
the write it made, and the writer must still answer what happened.

``LostFirstAnswers`` wraps the writer's DynamoDB client so that every write is applied,
its answer dropped, and the identical call sent again, as botocore does after a read
timeout or a dropped connection (a transaction keeps its ClientRequestToken). Before the
fix: 502 for a create that was stored, 412 for a patch or delete that was applied.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from chalice.test import Client
from moto import mock_aws

from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from infra.local import bootstrap
from tests.integration.conftest import CALLERS, REGION, body_of, send, stage_client
from tests.tables import scan_all
from tools import moto_transactions
from tools.sample import PERSON

WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items"})


class LostFirstAnswers:
    """A boto3 DynamoDB client whose every write is applied, then sent again; the caller sees the second answer."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.resent: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name not in WRITES:
            return call

        def applied_then_resent(**kwargs: Any) -> Any:
            if name == "transact_write_items":
                kwargs.setdefault("ClientRequestToken", str(uuid.uuid4()))  # botocore's, kept across its retries
            with contextlib.suppress(ClientError):  # whatever the first attempt answered never arrived
                call(**kwargs)
            if kwargs.get("TableName", "pii-vault") == "pii-vault":  # the people's table (not the key table)
                self.resent[name] += 1
            return call(**kwargs)

        return applied_then_resent


@pytest.fixture
def world(aws_env: None) -> Iterator[tuple[Client, Client, LostFirstAnswers, Any]]:
    moto_transactions.install()  # as the local stack's moto: DynamoDB's ClientRequestToken semantics
    try:
        with mock_aws():
            kms, ddb = boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
            bootstrap(kms, ddb)
            lossy = LostFirstAnswers(stage_client("writer", "dynamodb"))

            def app(role: str, dynamodb: Any) -> Any:
                settings = Settings(role, region=REGION, **CALLERS)
                return create_app(settings=settings, kms_client=stage_client(role, "kms"), dynamodb_client=dynamodb)

            with (
                Client(app("writer", lossy)) as writer,
                Client(app("reader", stage_client("reader", "dynamodb"))) as reader,
            ):
                yield writer, reader, lossy, ddb
    finally:
        moto_transactions.uninstall()


def test_given_lost_answers_when_a_person_is_created_patched_replaced_and_deleted_then_each_answer_is_right(
    world: tuple[Client, Client, LostFirstAnswers, Any],
) -> None:
    writer, reader, lossy, ddb = world
    path = "/customers/acme/people"

    created = send(writer, "POST", path, PERSON)
    person = f"{path}/{body_of(created)['id']}"
    patched = send(writer, "PATCH", person, {"name": "Grace B."}, **{"If-Match": '"1"'})
    replaced = send(writer, "PUT", person, {**PERSON, "surname": "Murray"}, **{"If-Match": '"2"'})
    stored = body_of(send(reader, "GET", person))
    deleted = send(writer, "DELETE", person, **{"If-Match": '"3"'})

    assert [created.status_code, patched.status_code, replaced.status_code] == [201, 200, 200]
    assert (stored["version"], stored["data"]) == (3, {**PERSON, "surname": "Murray"})
    assert deleted.status_code == 204
    assert send(reader, "GET", person).status_code == 404
    ledger = [i for i in scan_all(ddb, "pii-vault-erasures") if body_of(created)["id"] in str(i)]
    assert len(ledger) == 1  # the erasure's transaction ran once
    assert lossy.resent["put_item"] == 1 and lossy.resent["update_item"] == 2
    assert lossy.resent["transact_write_items"] == 1


def test_given_a_create_whose_id_holds_another_person_then_it_is_still_refused_and_the_log_names_the_cause(
    world: tuple[Client, Client, LostFirstAnswers, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from chalicelib.store import DynamoDbStore
    from chalicelib.store.dynamodb import DynamoDbTable
    from chalicelib.store.records import META_UPDATED, PersonRecord
    from chalicelib.support.errors import StorageError

    store = DynamoDbStore(DynamoDbTable(stage_client("writer", "dynamodb"), "pii-vault"))
    first = PersonRecord(
        customer_id="acme",
        person_id="0" * 32,
        version=1,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        kms_key="k",
        slots={"0": b"wrapped"},
        fields={META_UPDATED: b"one write's sealed metadata", "name": b"x"},
    )
    store.create_person(first)
    store.create_person(first)  # the same write again: a retry that found itself

    with caplog.at_level(logging.WARNING), pytest.raises(StorageError) as refused:
        store.create_person(replace(first, fields={META_UPDATED: b"another write's", "name": b"y"}))

    assert refused.value.cause == "condition_failed"
    assert "ConditionalCheckFailedException (condition_failed)" in caplog.text
