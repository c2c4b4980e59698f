"""Bulk jobs over moto: beacon backfill, tenant offboarding, erasure ledger replay after a restore."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from chalicelib.service import bulk
from chalicelib.stages.wiring import Clients, build_indexer
from chalicelib.store import layout
from chalicelib.support.config import Settings
from tests.integration.conftest import REGION, Stack, body_of, send
from tests.integration.test_lookup import PERSON, search
from tests.tables import scan_all
from tools import jobs as cli


def create(stack: Stack, customer: str, email: str, **headers: str) -> str:
    response = send(stack.writer, "POST", f"/customers/{customer}/people", {**PERSON, "email": email}, **headers)
    assert response.status_code == 201, response.body
    return str(body_of(response)["id"])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def ddb() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def beacons(stack: Stack) -> dict[str, bytes]:
    return {i["sk"]["S"]: i["beacon"]["B"] for i in stack.scan() if "beacon" in i}


def test_given_people_without_beacons_when_backfilled_then_search_finds_them_and_a_rerun_changes_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [create(stack, "acme", f"person{n}@example.com") for n in range(7)]
    assert beacons(stack) == {}

    code, dry = run_cli(capsys, "backfill", "--segments", "3", "--dry-run")
    assert (code, dry["totals"]["written"]) == (0, 7)
    assert beacons(stack) == {}  # a dry run writes nothing

    code, report = run_cli(capsys, "backfill", "--segments", "3")
    assert code == 0 and report["done"] and report["totals"]["written"] == 7
    assert len(beacons(stack)) == 7
    assert [p["id"] for p in search(stack, "person3@example.com")] == [ids[3]]

    code, again = run_cli(capsys, "backfill", "--segments", "2")
    assert again["totals"].get("written", 0) == 0 and again["totals"]["unchanged"] == 7


def test_given_a_deadline_when_a_segment_stops_then_the_same_job_resumes_from_its_checkpoint(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "PAGE_SIZE", 2)
    for n in range(5):
        create(stack, "acme", f"p{n}@example.com")
    settings = Settings("indexer", region=REGION)
    indexer = build_indexer(settings, Clients.of(boto3.client("kms", region_name=REGION), ddb()))
    checkpoints = bulk.DynamoDbCheckpoints(ddb(), settings.jobs_table_name)
    pages = bulk.scan_pages(ddb(), settings.table_name, 0, 1)
    calls = iter([False, True])  # one page, then out of time

    first = bulk.run_segment(
        "job-1", 0, pages, bulk.backfill_processor(indexer), checkpoints, out_of_time=lambda: next(calls, True)
    )
    assert not first.done and first.pages == 1 and first.counts["written"] == 2

    second = bulk.run_segment("job-1", 0, pages, bulk.backfill_processor(indexer), checkpoints)
    assert second.done and second.counts["written"] == 5 and second.counts["items"] == 5
    assert len(beacons(stack)) == 5


def _secret(stack: Stack, customer: str, secret_id: str, versions: int) -> None:
    for n in range(versions):
        assert (
            send(stack.writer, "PUT", f"/customers/{customer}/secrets/{secret_id}", {"value": f"v{n}"}).status_code
            == 201
        )


def test_given_a_tenant_when_offboarded_then_every_item_and_idempotency_record_goes_and_others_stay(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(3):
        create(stack, "acme", f"a{n}@example.com", **{"Idempotency-Key": str(uuid.uuid4())})
    keep = create(stack, "globex", "g@example.com", **{"Idempotency-Key": str(uuid.uuid4())})
    _secret(stack, "acme", "api-token", 3)
    _secret(stack, "globex", "api-token", 1)
    before = stack.scan()
    idempotency_before = scan_all(ddb(), "pii-vault-idempotency")

    code, dry = run_cli(capsys, "offboard", "--customer", "acme", "--dry-run", "--segments", "2")
    assert code == 0 and dry["totals"]["would_delete"] == 3 + 1 + 3  # people, secret head, versions
    assert dry["totals"]["idempotency_items"] == 6
    assert stack.scan() == before and scan_all(ddb(), "pii-vault-erasures") == []

    code, report = run_cli(capsys, "offboard", "--customer", "acme", "--segments", "2")
    assert code == 0 and report["done"] and report["totals"]["deleted"] == 7

    assert {i["pk"]["S"] for i in stack.scan()} == {"C#globex"}
    assert len(stack.scan()) == 3  # globex: one person, a secret head and its version
    left = scan_all(ddb(), "pii-vault-idempotency")
    assert len(left) == len(idempotency_before) - 6 == 2
    assert all("acme" not in i["id"]["S"] for i in left)
    [entry] = scan_all(ddb(), "pii-vault-erasures")
    assert layout.ledger_entry_of(entry)[:3] == ("acme", "tenant", "acme")
    assert send(stack.reader, "GET", f"/customers/globex/people/{keep}").status_code == 200


def _restore_copy(source: str, target: str) -> None:
    """What a PITR restore gives: the same items, in a table of another name."""
    client = ddb()
    client.create_table(
        TableName=target,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in scan_all(client, source):
        client.put_item(TableName=target, Item=item)


def test_given_erasures_after_a_backup_when_the_ledger_is_replayed_on_the_restore_then_they_stay_erased(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    erased = create(stack, "acme", "gone@example.com")
    kept = create(stack, "acme", "kept@example.com")
    create(stack, "initech", "i@example.com")
    _secret(stack, "acme", "old-token", 2)
    _restore_copy("pii-vault", "pii-vault-restored")  # the backup, taken before the erasures

    assert send(stack.writer, "DELETE", f"/customers/acme/people/{erased}").status_code == 204
    assert send(stack.writer, "DELETE", "/customers/acme/secrets/old-token").status_code == 204
    code, _ = run_cli(capsys, "offboard", "--customer", "initech", "--segments", "1")
    assert code == 0
    # The secret id is used again after its erasure; the restored table has the new version too.
    _secret(stack, "acme", "old-token", 1)
    for item in stack.scan():
        if item["sk"]["S"].startswith("S#old-token"):
            ddb().put_item(TableName="pii-vault-restored", Item=item)

    code, dry = run_cli(capsys, "restore-replay", "--table", "pii-vault-restored", "--dry-run", "--segments", "2")
    # The new head and version 1 replaced the old ones in the restored copy: the old version 2 is left.
    assert code == 0 and dry["totals"]["would_delete"] == 1 + 1 + 1  # person, initech's person, old version 2
    assert dry["totals"]["kept_newer"] == 2
    code, report = run_cli(capsys, "restore-replay", "--table", "pii-vault-restored", "--segments", "2")
    assert code == 0 and report["done"]

    restored = {(i["pk"]["S"], i["sk"]["S"]) for i in scan_all(ddb(), "pii-vault-restored")}
    assert ("C#acme", f"P#{erased}") not in restored
    assert ("C#acme", f"P#{kept}") in restored
    assert not [k for k in restored if k[0] == "C#initech"]
    assert {sk for pk, sk in restored if sk.startswith("S#old-token")} == {
        "S#old-token",
        "S#old-token#V#0000000001",  # the head and version 1 written after the erasure
    }


def _lambda_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """GetRecords output as Lambda delivers it: binaries base64-encoded in JSON."""
    import base64

    def encode(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode()
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if hasattr(value, "timestamp"):
            return value.timestamp()
        return value

    return {
        "Records": [
            {
                **encode(r),
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/pii-vault/stream/x",
                "awsRegion": REGION,
            }
            for r in records
        ]
    }


def test_given_the_indexer_stage_then_its_stream_handler_and_backfill_function_work_as_lambda_invokes(
    stack: Stack,
) -> None:
    from chalice.test import Client

    from chalicelib.stages.app import create_app
    from tools.streampoll import streams_client

    person = create(stack, "acme", "lambda@example.com")
    arn = ddb().describe_table(TableName="pii-vault")["Table"]["LatestStreamArn"]
    streams = streams_client(region_name=REGION)
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    app = create_app(
        settings=Settings("indexer", region=REGION, stream_arn=arn),
        kms_client=boto3.client("kms", region_name=REGION),
        dynamodb_client=ddb(),
    )

    with Client(app) as client:
        client.lambda_.invoke("index_beacons", _lambda_event(records))
        assert [p["id"] for p in search(stack, "lambda@example.com")] == [person]

        report = client.lambda_.invoke("backfill", {"job": "b1", "segment": 0, "total_segments": 1}).payload
        assert report["done"] and report["counts"]["unchanged"] == 1
        from chalicelib.support.errors import ValidationError

        with pytest.raises(ValidationError):  # a function error for the invoker, naming the field
            client.lambda_.invoke("backfill", {"job": "b1", "segment": 2, "total_segments": 1})


def test_given_the_offboard_stage_then_one_invocation_per_segment_deletes_the_tenant(stack: Stack) -> None:
    from chalice.test import Client

    from chalicelib.stages.app import create_app

    create(stack, "acme", "x@example.com")
    app = create_app(settings=Settings("offboard", region=REGION), dynamodb_client=ddb())
    with Client(app) as client:
        for segment in (0, 1):
            report = client.lambda_.invoke(
                "offboard", {"job": "o1", "customer_id": "acme", "segment": segment, "total_segments": 1}
            ).payload
            assert report["done"]
    assert stack.scan() == []
    assert len(scan_all(ddb(), "pii-vault-erasures")) == 1
