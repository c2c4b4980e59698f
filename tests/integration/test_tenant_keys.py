"""Per-tenant keys, rewrap and crypto-shredding on moto, through the real apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.envelope.format import KIND_MASKED_TENANT, KIND_POOL, KIND_TENANT, parse_blob
from chalicelib.keys.reencrypt import KmsReEncryptor, RewrapMap
from chalicelib.service.jobs import Control, SegmentRun
from chalicelib.service.rewrap import RewrapPlan, rewrap_processor, rewrap_segment
from chalicelib.stages.app import create_app
from chalicelib.store import layout
from chalicelib.store.checkpoints import Checkpoint
from chalicelib.store.job_items import DynamoDbSlotItems
from chalicelib.support.config import TENANTS_SUFFIX, Settings
from infra.local import bootstrap
from tests.integration.conftest import CALLERS, REGION, body_of, send
from tools.moto_fidelity import install
from tools.tenants import onboard, shred

PERSON = {
    "name": "Grace",
    "surname": "Hopper",
    "email": "grace@example.com",
    "dob": "1906-12-09",
    "address": {"line1": "1 Navy Way", "city": "Arlington", "postal_code": "22201", "country": "US"},
}
NO_CACHE = {"writer_key_cache_seconds": 0, "reader_key_cache_seconds": 0, "tenant_key_cache_seconds": 0}


class World:
    def __init__(self, scope: str = "pool") -> None:
        self.kms = boto3.client("kms", region_name=REGION)
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.resources = bootstrap(self.kms, self.ddb)
        self.table = self.resources["table_name"]
        self.shared = self.kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]["Arn"]
        self.scope = scope

    def settings(self, role: str) -> Settings:
        return Settings(
            role,
            region=REGION,
            tenants_table_name=self.table + TENANTS_SUFFIX,
            key_scope=self.scope,
            **CALLERS,
            **NO_CACHE,
        )

    def client(self, role: str) -> Client:
        return Client(create_app(settings=self.settings(role), kms_client=self.kms, dynamodb_client=self.ddb))

    def onboard(self, customer: str) -> str:
        return str(onboard(self.kms, self.ddb, self.settings("writer"), customer)["key_arn"])

    def create(self, customer: str) -> str:
        with self.client("writer") as writer:
            response = send(writer, "POST", f"/customers/{customer}/people", PERSON)
        assert response.status_code == 201, response.body
        return str(body_of(response)["id"])

    def read(self, customer: str, person_id: str) -> Any:
        with self.client("reader") as reader:
            return send(reader, "GET", f"/customers/{customer}/people/{person_id}")

    def read_masked(self, customer: str, person_id: str) -> Any:
        with self.client("masked") as masked:
            return send(masked, "GET", f"/customers/{customer}/people/{person_id}")

    def item(self, customer: str, person_id: str) -> dict[str, Any]:
        return self.ddb.get_item(TableName=self.table, Key=layout.person_key(customer, person_id))["Item"]


def segment(world: World, plan: RewrapPlan, job: str, verify: bool = False) -> Checkpoint:
    """Segment 0 of 1 of a rewrap (or its verify pass) with the job's own wiring."""
    items = DynamoDbSlotItems(world.ddb, world.table)
    return rewrap_segment(
        plan,
        SegmentRun(job, 0, 1, plan.dry_run),
        items,
        lambda source, target: KmsReEncryptor(world.kms, source, target),
        Control(),
        verify=verify,
    )


def kinds(item: dict[str, Any], prefix: str = layout.FIELD_PREFIX) -> set[int]:
    return {parse_blob(bytes(v["B"])).kind for k, v in item.items() if k.startswith(prefix)}


def masked_slots(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k.startswith(layout.MASKED_SLOT_PREFIX)}


@pytest.fixture
def world(aws_env: None) -> Iterator[World]:
    install()
    with mock_aws():
        yield World()


def test_given_an_onboarded_tenant_then_its_records_use_tenant_scoped_keys_under_its_own_key(world: World) -> None:
    key_a = world.onboard("tenant-a")
    tags = world.kms.list_resource_tags(KeyId=key_a)["Tags"]
    assert {"TagKey": "pii-vault-tenant", "TagValue": "tenant-a"} in tags
    assert world.kms.get_key_rotation_status(KeyId=key_a)["KeyRotationEnabled"] is True
    a, b = world.create("tenant-a"), world.create("tenant-b")
    item_a, item_b = world.item("tenant-a", a), world.item("tenant-b", b)
    assert item_a["kms_key"]["S"] == key_a and kinds(item_a) == {KIND_TENANT}
    assert item_b["kms_key"]["S"] == world.shared and kinds(item_b) == {KIND_POOL}
    assert body_of(world.read("tenant-a", a))["data"]["email"] == PERSON["email"]
    assert body_of(world.read("tenant-b", b))["data"]["email"] == PERSON["email"]


@pytest.mark.parametrize("how", ["disable", "schedule_deletion"])
def test_given_an_unusable_tenant_key_then_read_and_write_answer_key_unavailable(world: World, how: str) -> None:
    key_a = world.onboard("tenant-a")
    person = world.create("tenant-a")
    key_id = world.kms.describe_key(KeyId=key_a)["KeyMetadata"]["KeyId"]
    if how == "disable":
        world.kms.disable_key(KeyId=key_id)
    else:
        world.kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    read = world.read("tenant-a", person)
    assert (read.status_code, body_of(read)["code"]) == (502, "key_unavailable")
    with world.client("writer") as writer:
        write = send(writer, "POST", "/customers/tenant-a/people", PERSON)
    assert (write.status_code, body_of(write)["code"]) == (502, "key_unavailable")
    other = world.create("tenant-b")  # the shared key's tenants are untouched
    assert world.read("tenant-b", other).status_code == 200


def test_given_offboarding_with_shredding_then_the_key_is_pending_deletion_and_the_tenant_unavailable(
    world: World,
) -> None:
    from chalicelib.service.offboard import OffboardRun
    from chalicelib.stages.wiring import Clients, build_offboarding

    key_a = world.onboard("tenant-a")
    world.create("tenant-a")
    with pytest.raises(Exception, match="deletion days"):
        shred(world.kms, world.ddb, world.settings("offboard"), "tenant-a", days=3)
    # Items remain: the irreversible step is refused, whatever a job reported.
    refused = shred(world.kms, world.ddb, world.settings("offboard"), "tenant-a", days=7)
    assert refused["shredded"] is False and refused["done"] is False
    assert world.kms.describe_key(KeyId=key_a)["KeyMetadata"]["KeyState"] == "Enabled"

    offboarding = build_offboarding(world.settings("offboard"), Clients.of(world.kms, world.ddb))
    assert offboarding.run(OffboardRun("o1", "tenant-a", 0, 1), Control()).done
    report = shred(world.kms, world.ddb, world.settings("offboard"), "tenant-a", days=7)
    assert report["shredded"] is True
    assert world.kms.describe_key(KeyId=key_a)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    with world.client("writer") as writer:  # the tenant cannot be written again under its shredded key
        response = send(writer, "POST", "/customers/tenant-a/people", PERSON)
    assert (response.status_code, body_of(response)["code"]) == (502, "key_unavailable")
    assert shred(world.kms, world.ddb, world.settings("offboard"), "tenant-b")["shredded"] is False


def tenant_world() -> World:
    return World(scope="tenant")


def test_given_a_tenant_moved_from_the_shared_key_then_rewrap_moves_its_slots_and_reads_still_work(
    aws_env: None,
) -> None:
    install()
    with mock_aws():
        world = tenant_world()
        people = [world.create("tenant-c") for _ in range(3)]
        other = world.create("tenant-d")
        before = {p: world.item("tenant-c", p) for p in people}
        key_c = world.onboard("tenant-c")
        plan = RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault")
        dry = segment(world, RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault", dry_run=True), "j-dry")
        assert dry.counts["would_rewrap_slots"] > 0 and world.item("tenant-c", people[0]) == before[people[0]]
        result = segment(world, plan, "j1")
        assert result.done and result.counts["items_rewrapped"] == 3
        # Caches off: one data key per record and view (the masked view's mk_0 is a key of its own).
        assert result.counts["reencrypt_calls"] == 6 and result.counts["masked_slots_rewrapped"] == 3
        for p in people:
            after = world.item("tenant-c", p)
            assert after["kms_key"]["S"] == key_c and kinds(after, layout.MASKED_PREFIX) == {KIND_MASKED_TENANT}
            assert masked_slots(after).keys() == masked_slots(before[p]).keys() != set()
            assert all(after[k] != v for k, v in masked_slots(before[p]).items())
            for prefix in (layout.FIELD_PREFIX, layout.MASKED_PREFIX):  # ciphertexts untouched, both views
                fields = {k: v for k, v in after.items() if k.startswith(prefix)}
                assert fields == {k: v for k, v in before[p].items() if k.startswith(prefix)} != {}
            assert body_of(world.read("tenant-c", p))["data"]["email"] == PERSON["email"]
            assert body_of(world.read_masked("tenant-c", p))["data"]["email"] == "g***@example.com"
        assert world.item("tenant-d", other)["kms_key"]["S"] == world.shared
        verify = segment(world, plan, "j1-verify", verify=True)
        assert verify.counts["verified_slots"] == 6 and verify.counts["verified_masked_slots"] == 3
        assert verify.counts["not_under_target"] == 0
        again = segment(world, plan, "j2")
        assert again.counts["items_rewrapped"] == 0 and again.counts["slots_not_under_source"] == 6
        # Crypto-shredding: with the tenant's key disabled neither view opens any more.
        world.kms.disable_key(KeyId=world.kms.describe_key(KeyId=key_c)["KeyMetadata"]["KeyId"])
        for p in people:
            for response in (world.read("tenant-c", p), world.read_masked("tenant-c", p)):
                assert (response.status_code, body_of(response)["code"]) == (502, "key_unavailable")
        assert body_of(world.read_masked("tenant-d", other))["data"]["email"] == "g***@example.com"


def test_given_masked_slots_the_job_did_not_read_then_its_update_fails_and_the_reread_moves_them_too(
    aws_env: None,
) -> None:
    """A masked slot left under the shared key would survive shredding: kms_key never moves past one."""
    install()
    with mock_aws():
        world = tenant_world()
        person = world.create("tenant-c")
        key_c = world.onboard("tenant-c")
        before = world.item("tenant-c", person)
        stripped = {k: v for k, v in before.items() if not k.startswith(layout.MASKED_SLOT_PREFIX)}
        plan = RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault")
        # The job reads the item without its masked slots (as before this change): kms_key must not move.
        world.ddb.put_item(TableName=world.table, Item=stripped)
        rewrap_map = RewrapMap(KmsReEncryptor(world.kms, world.shared, key_c))
        process = rewrap_processor(DynamoDbSlotItems(world.ddb, world.table), plan, rewrap_map)
        world.ddb.put_item(TableName=world.table, Item=before)  # the masked slots are there after all
        counts = process([stripped])
        assert counts["concurrent_writes_reread"] == 1 and counts["items_rewrapped"] == 1
        after = world.item("tenant-c", person)
        assert after["kms_key"]["S"] == key_c
        assert all(after[k] != v for k, v in masked_slots(before).items())
        world.kms.disable_key(KeyId=world.kms.describe_key(KeyId=key_c)["KeyMetadata"]["KeyId"])
        response = world.read_masked("tenant-c", person)
        assert (response.status_code, body_of(response)["code"]) == (502, "key_unavailable")


def test_given_a_concurrent_write_then_rewrap_rereads_and_never_clobbers_it(aws_env: None) -> None:
    install()
    with mock_aws():
        world = tenant_world()
        person = world.create("tenant-c")
        stale = world.item("tenant-c", person)
        with world.client("writer") as writer:  # a write lands between the job's read and its update
            send(
                writer, "PUT", f"/customers/tenant-c/people/{person}", {**PERSON, "name": "Ada"}, **{"If-Match": '"1"'}
            )
        fresh = world.item("tenant-c", person)
        assert fresh["slots"] != stale["slots"]
        new_shared = world.kms.create_key()["KeyMetadata"]["Arn"]
        plan = RewrapPlan(world.shared, new_shared, None, "pii-vault")
        rewrap_map = RewrapMap(KmsReEncryptor(world.kms, world.shared, new_shared))
        process = rewrap_processor(DynamoDbSlotItems(world.ddb, world.table), plan, rewrap_map)
        counts = process([stale])
        assert counts["concurrent_writes_reread"] == 1 and counts["items_rewrapped"] == 1
        after = world.item("tenant-c", person)
        assert after["version"] == fresh["version"] and after["kms_key"]["S"] == new_shared
        assert {k: v for k, v in after.items() if k.startswith("f_")} == {
            k: v for k, v in fresh.items() if k.startswith("f_")
        }
        reader = Settings(
            "reader", region=REGION, previous_kms_key_ids=(world.shared,), kms_key_id=new_shared, **CALLERS, **NO_CACHE
        )
        with Client(create_app(settings=reader, kms_client=world.kms, dynamodb_client=world.ddb)) as client:
            got = send(client, "GET", f"/customers/tenant-c/people/{person}")
        assert body_of(got)["data"]["name"] == "Ada"


def test_given_pool_keys_shared_by_many_records_then_rewrap_calls_kms_once_per_distinct_key(aws_env: None) -> None:
    install()
    with mock_aws():
        world = World()
        cached = {**world.settings("writer").__dict__, "writer_key_cache_seconds": 3600}
        writer = Client(create_app(settings=Settings(**cached), kms_client=world.kms, dynamodb_client=world.ddb))
        with writer:
            for customer in ("t1", "t2", "t3"):
                for _ in range(3):
                    assert send(writer, "POST", f"/customers/{customer}/people", PERSON).status_code == 201
        new_shared = world.kms.create_key()["KeyMetadata"]["Arn"]
        result = segment(world, RewrapPlan(world.shared, new_shared, None, "pii-vault"), "j")
        assert result.counts["items_rewrapped"] == 9
        assert result.counts["reencrypt_calls"] == 2  # one pool key per view for all nine records


def test_given_the_cli_then_rewrap_runs_its_verify_pass_and_offboard_shreds_the_tenant_key(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tools import jobs as cli

    install()
    with mock_aws():
        world = tenant_world()
        monkeypatch.setenv("PII_VAULT_TENANTS_TABLE", world.table + TENANTS_SUFFIX)
        person = world.create("tenant-c")
        key_c = world.onboard("tenant-c")
        argv = ["rewrap", "--source-key", world.shared, "--target-key", key_c, "--customer", "tenant-c"]
        assert cli.main([*argv, "--dry-run"]) == 0
        dry = json.loads(capsys.readouterr().out)
        assert dry["totals"]["would_rewrap_slots"] >= 1 and "verified_slots" not in dry["totals"]
        assert cli.main(argv) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["totals"]["items_rewrapped"] == 1
        assert report["totals"]["verified_slots"] >= 1 and report["totals"].get("not_under_target", 0) == 0
        assert body_of(world.read("tenant-c", person))["data"]["email"] == PERSON["email"]

        assert cli.main(["offboard", "--customer", "tenant-c", "--shred-key", "--deletion-days", "7"]) == 0
        offboarded = json.loads(capsys.readouterr().out)
        assert offboarded["totals"]["deleted"] == 1
        assert offboarded["segments"][-1]["shredded"] is True
        assert world.kms.describe_key(KeyId=key_c)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_given_slots_no_blob_names_any_more_then_rewrap_removes_them_and_the_record_moves_whole(
    aws_env: None,
) -> None:
    """PUT then PATCH of every field leaves the record slot (both views) naming nothing: the
    job removes those slots (as read) instead of leaving the record half on the old key."""
    install()
    with mock_aws():
        world = tenant_world()
        person = world.create("tenant-c")
        path = f"/customers/tenant-c/people/{person}"
        with world.client("writer") as writer:
            assert send(writer, "PUT", path, PERSON, **{"If-Match": '"1"'}).status_code == 200
            assert send(writer, "PATCH", path, PERSON, **{"If-Match": '"2"'}).status_code == 200
        before = world.item("tenant-c", person)
        assert "0" in before["slots"]["M"] and "mk_0" in before  # named by no blob now
        key_c = world.onboard("tenant-c")
        plan = RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault")
        dry = segment(world, RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault", dry_run=True), "j-dry")
        assert dry.counts["would_remove_unreferenced_slots"] == 2 and world.item("tenant-c", person) == before
        result = segment(world, plan, "j1")
        assert result.counts["unreferenced_slots_removed"] == 2 and result.counts["items_rewrapped"] == 1
        after = world.item("tenant-c", person)
        assert "0" not in after["slots"]["M"] and "mk_0" not in after and after["kms_key"]["S"] == key_c
        assert body_of(world.read("tenant-c", person))["data"] == PERSON
        assert body_of(world.read_masked("tenant-c", person))["data"]["email"] == "g***@example.com"


def test_given_forged_done_checkpoints_then_offboard_with_shred_key_deletes_every_item_before_the_key_goes(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checkpoints saying ``done`` planted in the jobs table for a job id: resuming that job used to
    report done at once and schedule the key's deletion with every item still in the table."""
    import json

    from tools import jobs as cli

    install()
    with mock_aws():
        world = tenant_world()
        monkeypatch.setenv("PII_VAULT_TENANTS_TABLE", world.table + TENANTS_SUFFIX)
        key_e = world.onboard("tenant-e")
        people = [world.create("tenant-e") for _ in range(2)]
        for segment in (0, 1):
            world.ddb.put_item(
                TableName=world.resources["jobs_table_name"],
                Item={"job": {"S": "forged"}, "segment": {"N": str(segment)}, "done": {"BOOL": True}},
            )
        argv = ["offboard", "--customer", "tenant-e", "--segments", "1", "--resume", "forged", "--shred-key"]
        assert cli.main([*argv, "--deletion-days", "7"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["segments"][-1]["shredded"] is True
        assert not [i for i in world.ddb.scan(TableName=world.table)["Items"] if i["pk"]["S"] == "C#tenant-e"]
        assert all(world.read("tenant-e", p).status_code == 404 for p in people)
        assert world.kms.describe_key(KeyId=key_e)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_given_a_shredded_tenant_key_then_its_stream_record_is_skipped_and_another_tenants_person_is_indexed(
    aws_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The review's stall: the indexer caught only IntegrityError, so a KeyUnavailableError from a
    shredded tenant key failed every retry of the batch, and the shard (another tenant's new person
    with it) waited up to 24 hours. Now the record is skipped, counted and logged; nothing is parked."""
    import logging

    from chalicelib.service.indexer import SKIPPED_MESSAGE
    from chalicelib.stages.wiring import Clients, build_indexer
    from tools.streampoll import StreamPoller, streams_client

    install()
    with mock_aws():
        world = tenant_world()
        key_v = world.onboard("victim")
        world.create("victim")
        key_id = world.kms.describe_key(KeyId=key_v)["KeyMetadata"]["KeyId"]
        world.kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)  # shredded: its records no longer open
        other = world.create("other")
        indexer = build_indexer(world.settings("indexer"), Clients.of(world.kms, world.ddb))
        arn = world.ddb.describe_table(TableName=world.table)["Table"]["LatestStreamArn"]
        parked: list[dict[str, Any]] = []
        poller = StreamPoller(streams_client(region_name=REGION), arn, indexer.handle_records, park=parked.append)
        with caplog.at_level(logging.ERROR):
            poller.drain()
        assert poller.counts["unprocessable"] == 1 and poller.counts["written"] == 1 and parked == []
        assert any(r.getMessage().startswith(f"{SKIPPED_MESSAGE} (key_unavailable)") for r in caplog.records)
        with world.client("reader") as reader:
            found = send(reader, "POST", "/customers/other/people/search", {"email": PERSON["email"]})
        assert [p["id"] for p in body_of(found)["items"]] == [other]
