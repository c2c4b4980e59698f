"""Lookup by email over moto: writer -> table stream -> indexer -> beacon table and its GSI ->
reader search; erasure with its ledger and idempotency references."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.stages.app import create_app
from chalicelib.stages.wiring import Clients, build_indexer
from chalicelib.store import key_table, layout, tables
from chalicelib.store.ledger import entry_of
from chalicelib.support.config import BEACONS_SUFFIX, KEYS_SUFFIX, Settings
from tests.integration.conftest import REGION, Stack, body_of, send, stage_client
from tests.plaintext_guard import register
from tests.tables import scan_all
from tools.recorder import principals
from tools.streampoll import StreamPoller, streams_client

PERSON: dict[str, Any] = {
    "name": "Ottoline",
    "surname": "Vasquez-Brandt",
    "email": "Ottoline.VB@Example.COM",
    "dob": "1979-02-11",
    "address": {"line1": "12 Quai Lunel", "city": "Sète", "postal_code": "34200", "country": "FR"},
}
register(
    PERSON,
    (
        "Ottoline",
        "Vasquez-Brandt",
        "Ottoline.VB@example.com",
        "Ottoline.VB@Example.COM",
        "12 Quai Lunel",
        "ottoline.other@example.net",
    ),
)


@pytest.fixture
def indexed(stack: Stack) -> Iterator[tuple[Stack, StreamPoller]]:
    """The stack plus the indexer fed from the table's stream (as ``make dev`` runs it)."""
    settings = Settings("indexer", region=REGION)
    indexer = build_indexer(settings, Clients.of(stage_client("indexer", "kms"), stage_client("indexer", "dynamodb")))
    arn = stack.dynamodb.describe_table(TableName=settings.table_name)["Table"]["LatestStreamArn"]
    # The stream is read with the indexer's credentials, as its event source mapping reads it.
    streams = streams_client(principals.stage_session("indexer", REGION))
    yield stack, StreamPoller(streams, arn, indexer.handle_records)


def create(stack: Stack, customer: str = "acme", person: dict[str, Any] | None = None, **headers: str) -> str:
    response = send(stack.writer, "POST", f"/customers/{customer}/people", person or PERSON, **headers)
    assert response.status_code == 201, response.body
    return str(body_of(response)["id"])


def search(stack: Stack, email: str, customer: str = "acme", **extra: Any) -> Any:
    response = send(stack.reader, "POST", f"/customers/{customer}/people/search", {"email": email, **extra})
    assert response.status_code == 200, response.body
    return body_of(response)["items"]


def test_given_a_new_person_when_the_stream_is_indexed_then_search_finds_the_same_view_as_get(
    indexed: tuple[Stack, StreamPoller],
) -> None:
    stack, poller = indexed
    person_id = create(stack)
    assert search(stack, PERSON["email"]) == []  # eventually consistent: not indexed yet

    poller.drain()

    found = search(stack, "  Ottoline.VB@EXAMPLE.com ")  # domain case and whitespace do not matter
    get = body_of(send(stack.reader, "GET", f"/customers/acme/people/{person_id}"))
    assert found == [get]
    assert poller.counts["written"] == 1


def test_given_an_indexed_person_when_the_local_part_differs_in_case_then_not_found(
    indexed: tuple[Stack, StreamPoller],
) -> None:
    stack, poller = indexed
    create(stack)
    poller.drain()
    assert search(stack, "ottoline.vb@example.com") == []  # local parts keep their case


def test_given_fields_when_searching_then_only_those_fields_answer(indexed: tuple[Stack, StreamPoller]) -> None:
    stack, poller = indexed
    create(stack)
    poller.drain()
    [item] = search(stack, PERSON["email"], fields=["name"])
    assert item["data"] == {"name": "Ottoline"}


def beacon_items(stack: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i[layout.PK]["S"], i[layout.SK]["S"]): i for i in scan_all(stack.dynamodb, BEACONS)}


BEACONS = "pii-vault-beacons"


def test_given_the_same_email_in_two_tenants_then_beacons_differ_and_each_finds_only_its_own(
    indexed: tuple[Stack, StreamPoller],
) -> None:
    stack, poller = indexed
    a, b = create(stack, "acme"), create(stack, "globex")
    poller.drain()
    beacons = {pk: item[layout.BEACON]["B"] for (pk, _sk), item in beacon_items(stack).items()}
    assert beacons["C#acme"] != beacons["C#globex"]
    assert not any(name in item for item in stack.scan() for name in layout.LEGACY_BEACON_ATTRIBUTES)
    assert [p["id"] for p in search(stack, PERSON["email"], "acme")] == [a]
    assert [p["id"] for p in search(stack, PERSON["email"], "globex")] == [b]


def test_given_put_and_patch_then_the_beacon_follows_the_email_and_other_fields_write_no_beacon(
    indexed: tuple[Stack, StreamPoller],
) -> None:
    stack, poller = indexed
    person_id = create(stack)
    poller.drain()
    path = f"/customers/acme/people/{person_id}"
    new = {**PERSON, "email": "ottoline.other@example.net"}
    assert send(stack.writer, "PUT", path, new).status_code == 200
    poller.drain()
    assert search(stack, PERSON["email"]) == []
    assert [p["id"] for p in search(stack, new["email"])] == [person_id]

    assert send(stack.writer, "PATCH", path, {"name": "Otto"}).status_code == 200
    poller.drain()
    [entry] = beacon_items(stack).values()
    assert entry[layout.BEACON_VERSION]["N"] == "3"  # the same beacon, from the latest version
    assert [p["data"]["name"] for p in search(stack, new["email"])] == ["Otto"]


def test_given_indexer_beacon_writes_then_they_do_not_feed_the_indexer_again(
    indexed: tuple[Stack, StreamPoller],
) -> None:
    stack, poller = indexed
    create(stack)
    poller.drain()  # INSERT -> beacon written in the beacon table, whose writes feed no stream it reads
    assert dict(poller.counts) == {"written": 1}
    assert poller.drain() == 0


def test_given_a_malformed_email_when_searching_then_400_without_the_value(indexed: tuple[Stack, StreamPoller]) -> None:
    stack, _ = indexed
    response = send(stack.reader, "POST", "/customers/acme/people/search", {"email": "not-an-email@@x"})
    assert response.status_code == 400
    assert "not-an-email" not in response.body.decode()
    assert body_of(response)["code"] == "validation_error" and "email" in body_of(response)["message"]
    assert send(stack.reader, "POST", "/customers/acme/people/search", {"mail": "a@b.c"}).status_code == 400
    assert send(stack.reader, "POST", "/customers/acme/people/search", {"email": 3}).status_code == 400


def test_given_a_stale_stream_record_then_a_newer_beacon_is_kept(indexed: tuple[Stack, StreamPoller]) -> None:
    stack, poller = indexed
    person_id = create(stack)
    send(stack.writer, "PUT", f"/customers/acme/people/{person_id}", {**PERSON, "email": "ottoline.other@example.net"})
    poller.drain()
    ddb = boto3.client("dynamodb", region_name=REGION)
    item = ddb.get_item(TableName=BEACONS, Key=layout.person_key("acme", person_id))["Item"]
    assert item[layout.BEACON_VERSION]["N"] == "2"
    # The version-1 record handled again (a backfill racing the stream) changes nothing.
    from chalicelib.store.beacons import DynamoDbIndexerStore

    indexer_ddb = stage_client("indexer", "dynamodb")
    assert DynamoDbIndexerStore(indexer_ddb, "pii-vault", BEACONS).set_beacon("acme", person_id, 1, b"x" * 16) is False
    assert [p["id"] for p in search(stack, "ottoline.other@example.net")] == [person_id]


def test_given_a_delete_then_item_beacon_and_idempotency_record_go_and_the_ledger_keeps_ids_only(
    indexed: tuple[Stack, StreamPoller],
) -> None:
    stack, poller = indexed
    person_id = create(stack, "acme", None, **{"Idempotency-Key": str(uuid.uuid4())})
    poller.drain()
    ddb = boto3.client("dynamodb", region_name=REGION)
    idem = scan_all(ddb, "pii-vault-idempotency")
    assert len(idem) == 2  # Powertools' record and our reference to it
    assert any(i["id"]["S"] == tables.ref_id("acme", "person", person_id) for i in idem)

    assert send(stack.writer, "DELETE", f"/customers/acme/people/{person_id}").status_code == 204

    assert search(stack, PERSON["email"]) == []
    assert not [i for i in stack.scan() if person_id in i.get("sk", {}).get("S", "")]
    poller.drain()  # the REMOVE record: the beacon goes, a tombstone refuses late writes
    [entry] = beacon_items(stack).values()
    assert layout.BEACON not in entry and entry[layout.BEACON_GONE] == {"BOOL": True}
    assert scan_all(ddb, "pii-vault-idempotency") == []
    [item] = scan_all(ddb, "pii-vault-erasures")
    ledger = entry_of(item)
    assert ledger is not None and (ledger.kind, ledger.customer_id, ledger.record_id) == ("person", "acme", person_id)
    assert item["customer"] == {"S": "person#acme"}  # the writer's partition: IAM holds it to these
    assert set(item) == {"customer", "erasure", "customer_id", "kind", "record_id", "erased_at"}


def test_given_a_delete_at_a_stale_version_then_412_and_no_ledger_entry(indexed: tuple[Stack, StreamPoller]) -> None:
    stack, _ = indexed
    person_id = create(stack)
    response = send(stack.writer, "DELETE", f"/customers/acme/people/{person_id}", **{"If-Match": '"7"'})
    assert response.status_code == 412
    assert scan_all(boto3.client("dynamodb", region_name=REGION), "pii-vault-erasures") == []
    assert send(stack.writer, "DELETE", f"/customers/acme/people/{'0' * 32}").status_code == 404


def test_given_the_indexer_role_then_the_app_has_the_stream_handler_and_backfill_only(stack: Stack) -> None:
    app = create_app(
        settings=Settings(
            "indexer",
            region=REGION,
            stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/pii-vault/stream/2026-01-01T00:00:00.000",
        )
    )
    assert app.routes == {}
    assert {h.name for h in app.event_sources} == {"index_beacons"}
    assert set(app.pure_lambda_functions[i].name for i in range(len(app.pure_lambda_functions))) == {"backfill"}


def test_given_the_indexer_then_every_table_read_names_only_its_attributes_and_its_policy_allows_it(
    stack: Stack,
) -> None:
    """The real calls (stream and backfill) checked against the generated policy
    (tests/policy_eval.py: moto does not evaluate conditions), and what came back."""
    from chalicelib.service.jobs import Control, SegmentRun, backfill_segment
    from chalicelib.store.job_items import DynamoDbIndexedScan
    from infra.iam import stage_policy
    from tests.arns import account_arns
    from tests.policy_eval import ALLOW, evaluate
    from tests.unit.test_policy_evaluation import KEY, TABLE
    from tests.unit.test_policy_lookup import BEACON_KEY

    settings = Settings("indexer", region=REGION)
    ddb = stage_client("indexer", "dynamodb")
    calls: list[tuple[str, dict[str, Any]]] = []
    returned: set[str] = set()
    ddb.meta.events.register(
        "provide-client-params.dynamodb.*", lambda params, model, **_: calls.append((model.name, dict(params)))
    )

    def seen(parsed: dict[str, Any], **_: Any) -> None:
        for item in [*parsed.get("Items", []), *([parsed["Item"]] if "Item" in parsed else [])]:
            returned.update(item)

    ddb.meta.events.register("after-call.dynamodb.GetItem", seen)
    ddb.meta.events.register("after-call.dynamodb.Scan", seen)
    indexer = build_indexer(settings, Clients.of(stage_client("indexer", "kms"), ddb))
    arn = stack.dynamodb.describe_table(TableName=settings.table_name)["Table"]["LatestStreamArn"]
    poller = StreamPoller(streams_client(principals.stage_session("indexer", REGION)), arn, indexer.handle_records)
    person_id = create(stack)
    assert send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"name": "Otto"}).status_code == 200
    poller.drain()
    backfill_segment(indexer, DynamoDbIndexedScan(ddb, settings.table_name), SegmentRun("bf", 0, 1), Control())

    key_reads = [(name, params) for name, params in calls if params.get("TableName") == settings.keys_table_name]
    reads = [
        (name, params) for name, params in calls if name in ("GetItem", "Scan") and (name, params) not in key_reads
    ]
    assert {name for name, _ in reads} == {"GetItem", "Scan"}
    policy = stage_policy("indexer", account_arns(KEY, TABLE, beacon_key_arn=BEACON_KEY))
    for name, params in reads:
        assert params["TableName"] == settings.table_name
        context = {"dynamodb:Attributes": sorted(params["ExpressionAttributeNames"].values())}
        assert evaluate(policy, f"dynamodb:{name}", TABLE, context) == ALLOW, name
    for name, params in key_reads:  # the email's data key: the key table's full-view partitions only
        leading = {"dynamodb:LeadingKeys": [params["Key"]["p"]["S"]]}
        assert evaluate(policy, f"dynamodb:{name}", TABLE + KEYS_SUFFIX, leading) == ALLOW, name
    writes = [(name, params) for name, params in calls if name not in ("GetItem", "Scan", "DescribeTable")]
    assert writes and {name for name, _ in writes} == {"UpdateItem"}
    for name, params in writes:  # the beacon table only: never a write on the PII table
        assert params["TableName"] == settings.beacons_table_name
        assert evaluate(policy, f"dynamodb:{name}", TABLE + BEACONS_SUFFIX) == ALLOW, name
    key_table_names = {
        key_table.PARTITION,
        key_table.REFERENCE,
        key_table.WRAPPED,
        key_table.KMS_KEY,
        key_table.FILED_AT,
    }
    assert returned and returned - key_table_names <= set(layout.INDEXER_READ_ATTRIBUTES)
    assert "f_name" not in returned and not any(a.startswith("m_") for a in returned)
    assert [p["id"] for p in search(stack, PERSON["email"])] == [person_id]
