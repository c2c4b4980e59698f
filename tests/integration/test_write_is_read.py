"""Issue 21 A over moto: what the writer and the indexer can read back through their writes.

moto enforces no IAM, so what a role *may* send is proven in tests/unit/test_write_is_read.py
with the evaluator; here, what the code sends and what comes back when the writer plays the
reported attacks with its own credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.stages.wiring import Clients, build_indexer
from chalicelib.store import layout
from chalicelib.store.beacons import DynamoDbIndexerStore
from chalicelib.support.config import BEACONS_SUFFIX, Settings
from tests.integration.conftest import REGION, Stack, body_of, send, stage_client
from tests.integration.test_lookup import PERSON, create, search
from tests.tables import scan_all
from tools.streampoll import StreamPoller, streams_client


@pytest.fixture
def indexed(stack: Stack) -> Iterator[tuple[Stack, StreamPoller, list[tuple[str, dict[str, Any]]]]]:
    """The stack, the indexer fed from the stream, and every DynamoDB request the indexer sent."""
    sent: list[tuple[str, dict[str, Any]]] = []
    ddb = stage_client("indexer", "dynamodb")
    ddb.meta.events.register(
        "provide-client-params.dynamodb.*", lambda params, model, **_: sent.append((model.name, dict(params)))
    )
    settings = Settings("indexer", region=REGION)
    indexer = build_indexer(settings, Clients.of(stage_client("indexer", "kms"), ddb))
    operator = boto3.client("dynamodb", region_name=REGION)  # the test's own look at the table
    arn = operator.describe_table(TableName=settings.table_name)["Table"]["LatestStreamArn"]
    yield stack, StreamPoller(streams_client(region_name=REGION), arn, indexer.handle_records), sent


def _failed_update_all_old(ddb: Any, customer: str, person_id: str) -> dict[str, Any]:
    """The channel of the finding: an UpdateItem whose condition fails, asking for the old item."""
    with pytest.raises(ClientError) as failed:
        ddb.update_item(
            TableName="pii-vault",
            Key=layout.person_key(customer, person_id),
            UpdateExpression="SET #v = :v",
            ConditionExpression="#v = :never",
            ExpressionAttributeNames={"#v": layout.VERSION},
            ExpressionAttributeValues={":v": {"N": "1"}, ":never": {"N": "0"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    item: dict[str, Any] = failed.value.response["Item"]
    return item


def test_given_an_indexed_person_when_the_writer_reads_it_back_through_a_failed_write_then_no_beacon(
    indexed: tuple[Stack, StreamPoller, list[tuple[str, dict[str, Any]]]],
) -> None:
    """The reported email oracle: a writer creates a probe person with a guessed email, waits for
    the indexer, and compares the beacons it reads back. The PII item now carries no beacon."""
    stack, poller, _ = indexed
    victim = create(stack)
    probe = create(stack, person={**PERSON, "name": "Probe"})  # the same (guessed) email
    poller.drain()
    assert sorted(p["id"] for p in search(stack, PERSON["email"])) == sorted([victim, probe])  # indexed
    writer_ddb = stack.writer_clients["dynamodb"]
    for person_id in (victim, probe):
        item = _failed_update_all_old(writer_ddb, "acme", person_id)
        assert not set(item) & set(layout.LEGACY_BEACON_ATTRIBUTES)
        assert layout.BEACON not in item


def test_given_the_indexer_then_every_write_it_sends_goes_to_the_beacon_table(
    indexed: tuple[Stack, StreamPoller, list[tuple[str, dict[str, Any]]]],
) -> None:
    """No write of any kind on the PII table (its failed conditions would hand back whole items)."""
    stack, poller, sent = indexed
    person_id = create(stack)
    assert (
        send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"email": "x.y@example.org"}).status_code
        == 200
    )
    assert send(stack.writer, "DELETE", f"/customers/acme/people/{person_id}").status_code == 204
    poller.drain()
    writes = [(name, params) for name, params in sent if name not in ("GetItem", "Scan", "Query", "DescribeTable")]
    assert {name for name, _ in writes} == {"UpdateItem"}
    assert {params["TableName"] for _, params in writes} == {"pii-vault" + BEACONS_SUFFIX}
    assert {params["TableName"] for name, params in sent if name == "GetItem"} == {"pii-vault"}


def test_given_a_beacon_write_for_a_key_that_is_no_person_then_the_pii_table_is_untouched(stack: Stack) -> None:
    """The reported stub: an indexer-shaped UpdateItem on ``P#000...0`` or a secret's key made an
    item that broke the tenant's listing (502) and the secret's PUT (409). The indexer's writes
    now land in the beacon table, whatever key they name."""
    assert send(stack.writer, "PUT", "/customers/acme/secrets/api-token", {"value": "s3cr3t-v1"}).status_code == 201
    before = stack.scan()
    store = DynamoDbIndexerStore(stage_client("indexer", "dynamodb"), "pii-vault", "pii-vault" + BEACONS_SUFFIX)
    assert store.set_beacon("acme", "0" * 32, 1, b"b" * 16) is True
    store.forget("acme", "0" * 32)
    assert stack.scan() == before
    listing = send(stack.reader, "GET", "/customers/acme/people")
    assert listing.status_code == 200 and body_of(listing)["items"] == []
    assert send(stack.writer, "PUT", "/customers/acme/secrets/api-token", {"value": "s3cr3t-v2"}).status_code == 201
    assert len(scan_all(stack.dynamodb, "pii-vault" + BEACONS_SUFFIX)) == 1  # the tombstone only
