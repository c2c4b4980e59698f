"""Bulk jobs over moto: beacon backfill, tenant offboarding, erasure ledger replay after a restore."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from chalicelib.service.jobs import Control, SegmentRun, backfill_segment
from chalicelib.stages.wiring import Clients, build_indexer
from chalicelib.store import job_items, layout
from chalicelib.store.checkpoints import DynamoDbCheckpoints
from chalicelib.store.job_items import DynamoDbIndexedScan
from chalicelib.store.ledger import entry_of
from chalicelib.support.config import BEACONS_SUFFIX, Settings
from chalicelib.support.environment import Table
from infra.specs import TABLES
from tests.integration.conftest import REGION, Stack, body_of, send, signing_as, stage_client
from tests.integration.test_lookup import PERSON, search
from tests.request_proof import operator_code
from tests.tables import scan_all
from tools import jobs as cli
from tools.recorder import principals


def create(stack: Stack, customer: str, email: str, **headers: str) -> str:
    response = send(stack.writer, "POST", f"/customers/{customer}/people", {**PERSON, "email": email}, **headers)
    assert response.status_code == 201, response.body
    return str(body_of(response)["id"])


# Each job runs with its stage's credentials, as its deployed function; restore-replay is the
# operator's (docs/find-and-forget.md: "runs with the operator's credentials").
JOB_PRINCIPALS = {"backfill": "indexer", "offboard": "offboard"}
REPLAY = "restore-replay runs with the operator's credentials after a point-in-time restore"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    if argv[0] == "restore-replay":
        with operator_code(REPLAY):
            code = cli.main(list(argv))
    else:
        with signing_as(JOB_PRINCIPALS[argv[0]]):
            code = cli.main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def ddb(principal: str | None = None) -> Any:
    """The operator's client (looking under the API), or ``principal``'s."""
    return stage_client(principal, "dynamodb") if principal else boto3.client("dynamodb", region_name=REGION)


def beacons(stack: Stack) -> dict[str, bytes]:
    items = scan_all(stack.dynamodb, stack.resources["table_name"] + BEACONS_SUFFIX)
    return {i[layout.SK]["S"]: i[layout.BEACON]["B"] for i in items if layout.BEACON in i}


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
    monkeypatch.setattr(job_items, "PAGE_SIZE", 2)
    for n in range(5):
        create(stack, "acme", f"p{n}@example.com")
    settings = Settings("indexer", region=REGION)
    indexer = build_indexer(settings, Clients.of(stage_client("indexer", "kms"), ddb("indexer")))
    checkpoints = DynamoDbCheckpoints(ddb("indexer"), settings.jobs_table_name)
    people = DynamoDbIndexedScan(ddb("indexer"), settings.table_name)
    calls = iter([False, True])  # one page, then out of time
    run = SegmentRun("job-1", 0, 1)

    first = backfill_segment(indexer, people, run, Control(checkpoints, lambda: next(calls, True)))
    assert not first.done and first.pages == 1 and first.counts["written"] == 2

    second = backfill_segment(indexer, people, run, Control(checkpoints))
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
    entries = sorted((e.kind, e.customer_id) for e in map(entry_of, scan_all(ddb(), "pii-vault-erasures")) if e)
    assert entries == [("tenant", "acme"), ("tenant_done", "acme")]  # the erasure, then the verified-empty mark
    assert send(stack.reader, "GET", f"/customers/globex/people/{keep}").status_code == 200


def _restore_copy(source: str, target: str, table: Table = Table.PII) -> None:
    """What a PITR restore gives: the same items, in a table of another name."""
    client = ddb()
    spec = TABLES[table]  # the table's key, as infra declares it (a restore has no stream)
    keys = {k["AttributeName"] for k in spec.key_schema()}
    attributes = [a for a in spec.attribute_definitions() if a["AttributeName"] in keys]
    client.create_table(
        TableName=target, KeySchema=spec.key_schema(), AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST"
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
    _secret(stack, "acme", "rotated", 1)
    assert send(stack.writer, "DELETE", "/customers/acme/secrets/rotated").status_code == 204
    _secret(stack, "acme", "rotated", 1)  # erased and created again, both before the backup
    _restore_copy("pii-vault", "pii-vault-restored")  # the backup
    restore_point = _now()

    assert send(stack.writer, "DELETE", f"/customers/acme/people/{erased}").status_code == 204
    assert send(stack.writer, "DELETE", "/customers/acme/secrets/old-token").status_code == 204
    code, _ = run_cli(capsys, "offboard", "--customer", "initech", "--segments", "1")
    assert code == 0
    _secret(stack, "acme", "old-token", 1)  # the id used again after its erasure (not in the backup)

    argv = ["restore-replay", "--table", "pii-vault-restored", "--restore-point", restore_point, "--segments", "2"]
    argv += ["--skew-seconds", "0"]  # this test's erasures are milliseconds apart
    code, dry = run_cli(capsys, *argv, "--dry-run")
    # acme's person, old-token's head and two versions, initech's person
    assert code == 0 and dry["totals"]["would_delete"] == 1 + 3 + 1
    assert dry["totals"]["kept_recreated"] == 2  # "rotated": head and version 1, made again before the backup
    code, report = run_cli(capsys, *argv)
    assert code == 0 and report["done"] and report["totals"]["deleted"] == 5

    restored = {(i["pk"]["S"], i["sk"]["S"]) for i in scan_all(ddb(), "pii-vault-restored")}
    assert ("C#acme", f"P#{erased}") not in restored
    assert ("C#acme", f"P#{kept}") in restored
    assert not [k for k in restored if k[0] == "C#initech"]
    assert not [sk for _pk, sk in restored if sk.startswith("S#old-token")]
    assert {sk for _pk, sk in restored if sk.startswith("S#rotated")} == {"S#rotated", "S#rotated#V#0000000001"}


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    streams = streams_client(principals.stage_session("indexer", REGION))  # as its event source mapping
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    app = create_app(
        settings=Settings("indexer", region=REGION, stream_arn=arn),
        kms_client=stage_client("indexer", "kms"),
        dynamodb_client=ddb("indexer"),
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
    app = create_app(settings=Settings("offboard", region=REGION), dynamodb_client=ddb("offboard"))
    with Client(app) as client:
        for segment in (0, 1):
            report = client.lambda_.invoke(
                "offboard", {"job": "o1", "customer_id": "acme", "segment": segment, "total_segments": 1}
            ).payload
            assert report["done"]
    assert stack.scan() == []
    kinds = sorted(e.kind for e in map(entry_of, scan_all(ddb(), "pii-vault-erasures")) if e)
    assert kinds == ["tenant", "tenant_done"]


# -- issue 21 C: erasure that cannot be turned against its owner ------------------------------


def test_given_a_planted_tenant_wide_entry_dated_9999_then_replay_refuses_and_reports_it_and_keeps_the_tenant(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The review's attack: a writer PutItems ("victim", "tenant", "victim", 9999...) into the ledger;
    every later restore-replay deleted the whole tenant, people created after the entry included."""
    people = [create(stack, "victim", f"v{n}@example.com") for n in range(2)]
    ddb().put_item(
        TableName="pii-vault-erasures",
        Item={
            "customer": {"S": "victim"},
            "erasure": {"S": "9999-12-31T23:59:59.999Z#tenant#victim"},
            "kind": {"S": "tenant"},
            "record_id": {"S": "victim"},
            "erased_at": {"S": "9999-12-31T23:59:59.999Z"},
        },
    )
    _restore_copy("pii-vault", "pii-vault-restored")
    code, report = run_cli(
        capsys, "restore-replay", "--table", "pii-vault-restored", "--restore-point", _now(), "--segments", "1"
    )
    assert code == 0 and report["totals"]["refused_future_dated"] == 1 and "deleted" not in report["totals"]
    restored = {i["sk"]["S"] for i in scan_all(ddb(), "pii-vault-restored") if i["pk"]["S"] == "C#victim"}
    assert restored == {f"P#{p}" for p in people}


def test_given_an_erased_person_restored_with_created_at_9999_then_replay_deletes_it_by_id(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The review's attack: set created_at to 9999 on the restored copy of an erased person; replay
    reported kept_newer: 1, and setting the value back made the reader serve the erased email."""
    erased = create(stack, "acme", "gone@example.com")
    _restore_copy("pii-vault", "pii-vault-restored")
    restore_point = _now()
    assert send(stack.writer, "DELETE", f"/customers/acme/people/{erased}").status_code == 204
    key = {"pk": {"S": "C#acme"}, "sk": {"S": f"P#{erased}"}}
    ddb().update_item(
        TableName="pii-vault-restored",
        Key=key,
        UpdateExpression="SET created_at = :t",
        ExpressionAttributeValues={":t": {"S": "9999-12-31T23:59:59.999Z"}},
    )
    code, report = run_cli(
        capsys, "restore-replay", "--table", "pii-vault-restored", "--restore-point", restore_point, "--segments", "1"
    )
    assert code == 0 and report["totals"]["deleted"] == 1 and "kept_newer" not in report["totals"]
    assert "Item" not in ddb().get_item(TableName="pii-vault-restored", Key=key)


def test_given_the_ledger_restored_to_the_same_point_then_an_entry_dated_after_its_own_append_is_refused(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leaked writer appends a secret entry dated a day ahead: with the ledger as it stood at the
    restore point as witness, replay sees it was appended before the time it claims."""
    import datetime as dt

    _secret(stack, "acme", "tok", 2)
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    ahead = tomorrow.isoformat(timespec="milliseconds")
    forged = {
        "customer": {"S": "secret#acme"},
        "erasure": {"S": f"{ahead.replace('+00:00', 'Z')}#secret#tok"},
        "customer_id": {"S": "acme"},
        "kind": {"S": "secret"},
        "record_id": {"S": "tok"},
        "erased_at": {"S": ahead.replace("+00:00", "Z")},
    }
    ddb().put_item(TableName="pii-vault-erasures", Item=forged)
    _restore_copy("pii-vault", "pii-vault-restored")
    _restore_copy("pii-vault-erasures", "pii-vault-erasures-witness", Table.LEDGER)
    argv = ["restore-replay", "--table", "pii-vault-restored", "--restore-point", _now(), "--segments", "1"]
    # The replay runs after the day the entry names: only the witness can tell it was forward-dated.
    monkeypatch.setattr("chalicelib.service.common.utc_now", lambda: tomorrow + dt.timedelta(hours=1))
    code, report = run_cli(capsys, *argv, "--witness", "pii-vault-erasures-witness")
    assert code == 0 and report["totals"]["refused_dated_after_append"] == 1
    assert len([i for i in scan_all(ddb(), "pii-vault-restored") if i["sk"]["S"].startswith("S#tok")]) == 3
