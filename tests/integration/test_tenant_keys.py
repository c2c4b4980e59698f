"""Per-tenant keys, rewrap and crypto-shredding on moto, through the real apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.envelope.format import KIND_POOL, KIND_TENANT, parse_blob
from chalicelib.keys.reencrypt import KmsReEncryptor, RewrapMap
from chalicelib.service.jobs import Control, SegmentRun
from chalicelib.service.rewrap import RewrapPlan, rewrap_processor, rewrap_segment
from chalicelib.stages.app import create_app
from chalicelib.store import key_table, layout
from chalicelib.store.checkpoints import Checkpoint
from chalicelib.store.job_items import DynamoDbSlotItems
from chalicelib.store.key_table import DynamoDbKeyEntries
from chalicelib.store.records import CREATE_SLOT
from chalicelib.support.config import TENANTS_SUFFIX, Settings
from chalicelib.support.environment import Key
from infra.local import bootstrap
from tests import legacy_items
from tests.integration.conftest import CALLERS, REGION, body_of, send, signing_as, stage_client
from tests.request_proof import PROOF, operator_code
from tests.tables import scan_all
from tools.moto_fidelity import install
from tools.tenants import onboard, shred

PERSON = {
    "name": "Grace",
    "surname": "Hopper",
    "email": "grace@example.com",
    "dob": "1906-12-09",
    "address": {"line1": "1 Navy Way", "city": "Arlington", "postal_code": "22201", "country": "US"},
}


class NoCache(TypedDict):
    writer_key_cache_seconds: int
    reader_key_cache_seconds: int
    tenant_key_cache_seconds: int


NO_CACHE: NoCache = {"writer_key_cache_seconds": 0, "reader_key_cache_seconds": 0, "tenant_key_cache_seconds": 0}
KC = layout.v3_key(CREATE_SLOT)
# tools.tenants runs with the operator's credentials (its docstring): onboarding and shredding.
ONBOARD = "tools.tenants onboard: the operator files a tenant's own key"
SHRED = "tools.tenants shred: the operator schedules a tenant key's deletion"
OFFBOARD_SHRED = "tools.jobs offboard --shred-key, run by the operator"


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

    def client(self, role: str, settings: Settings | None = None) -> Client:
        """The stage's app on clients signing as that stage (self.kms, self.ddb: the operator's)."""
        return Client(
            create_app(
                settings=settings or self.settings(role),
                kms_client=stage_client(role, "kms"),
                dynamodb_client=stage_client(role, "dynamodb"),
            )
        )

    def onboard(self, customer: str) -> str:
        with operator_code(ONBOARD):
            return str(onboard(self.kms, self.ddb, self.settings("writer"), customer)["key_arn"])

    def new_shared_key(self) -> str:
        """A key to move every tenant to: deployed as the stack's new shared key (README "Per-tenant keys")."""
        arn = str(self.kms.create_key()["KeyMetadata"]["Arn"])
        PROOF.register_key(arn, Key.DATA)
        return arn

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
        key = layout.person_key(customer, person_id)
        item: dict[str, Any] = self.ddb.get_item(TableName=self.table, Key=key)["Item"]
        return item


def kinds(item: dict[str, Any], names: Any = layout.V3_FIELD_ATTRIBUTES) -> set[int]:
    return {parse_blob(bytes(v["B"])).kind for k, v in item.items() if k in names}


def rewrap_clients() -> tuple[Any, Any]:
    """The rewrap job's DynamoDB and KMS clients, signing as its stage."""
    return stage_client("rewrap", "dynamodb"), stage_client("rewrap", "kms")


def masked_slots(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k.startswith(layout.MASKED_SLOT_PREFIX)}


def key_entries(world: World) -> dict[tuple[str, bytes], dict[str, Any]]:
    """The key table: (partition, reference) -> entry."""
    items = scan_all(world.ddb, world.resources["keys_table_name"])
    return {(i[key_table.PARTITION]["S"], bytes(i[key_table.REFERENCE]["B"])): i for i in items}


def entry_of(world: World, item: dict[str, Any], attribute: str) -> dict[str, Any]:
    ref = bytes(item[attribute]["B"])
    return next(entry for (_p, r), entry in key_entries(world).items() if r == ref)


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
    assert entry_of(world, item_a, KC)[key_table.KMS_KEY]["S"] == key_a and kinds(item_a) == {KIND_TENANT}
    assert entry_of(world, item_a, KC)[key_table.PARTITION]["S"] == "C#tenant-a"
    assert entry_of(world, item_b, KC)[key_table.KMS_KEY]["S"] == world.shared and kinds(item_b) == {KIND_POOL}
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
    with operator_code(SHRED), pytest.raises(Exception, match="deletion days"):
        shred(world.kms, world.ddb, world.settings("offboard"), "tenant-a", days=3)
    # Items remain: the irreversible step is refused, whatever a job reported.
    with operator_code(SHRED):
        refused = shred(world.kms, world.ddb, world.settings("offboard"), "tenant-a", days=7)
    assert refused["shredded"] is False and refused["done"] is False
    assert world.kms.describe_key(KeyId=key_a)["KeyMetadata"]["KeyState"] == "Enabled"

    offboard_clients = Clients.of(stage_client("offboard", "kms"), stage_client("offboard", "dynamodb"))
    offboarding = build_offboarding(world.settings("offboard"), offboard_clients)
    assert offboarding.run(OffboardRun("o1", "tenant-a", 0, 1), Control()).done
    with operator_code(SHRED):
        report = shred(world.kms, world.ddb, world.settings("offboard"), "tenant-a", days=7)
    assert report["shredded"] is True
    assert world.kms.describe_key(KeyId=key_a)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    with world.client("writer") as writer:  # the tenant cannot be written again under its shredded key
        response = send(writer, "POST", "/customers/tenant-a/people", PERSON)
    assert (response.status_code, body_of(response)["code"]) == (502, "key_unavailable")
    with operator_code(SHRED):
        assert shred(world.kms, world.ddb, world.settings("offboard"), "tenant-b")["shredded"] is False


def tenant_world() -> World:
    return World(scope="tenant")


def _rewrap(world: World, plan: RewrapPlan, job: str, verify: bool = False) -> Checkpoint:
    """Segment 0 of 1 of a rewrap (or its verify pass) with the job's own wiring: items, then the key table."""
    ddb, kms = rewrap_clients()
    return rewrap_segment(
        plan,
        SegmentRun(job, 0, 1, plan.dry_run),
        DynamoDbSlotItems(ddb, world.table),
        lambda source, target: KmsReEncryptor(kms, source, target),
        Control(),
        keys=DynamoDbKeyEntries(ddb, world.resources["keys_table_name"]),
        verify=verify,
    )


def test_given_a_tenant_moved_from_the_shared_key_then_rewrap_moves_its_key_table_entries_and_reads_still_work(
    aws_env: None,
) -> None:
    """Format v3: the records name their keys by reference; the job moves each key-table entry
    of the tenant's partitions (both views) once, and touches no record."""
    install()
    with mock_aws():
        world = tenant_world()
        people = [world.create("tenant-c") for _ in range(3)]
        other = world.create("tenant-d")
        before = {p: world.item("tenant-c", p) for p in people}
        entries_before = key_entries(world)
        key_c = world.onboard("tenant-c")
        plan = RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault")
        dry = _rewrap(world, RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault", dry_run=True), "j-dry")
        assert dry.counts["would_rewrap_keys"] == 6 and key_entries(world) == entries_before
        result = _rewrap(world, plan, "j1")
        # Caches off: one data key per record and view, filed under the tenant's two partitions.
        assert result.done and result.counts["keys_rewrapped"] == 6 and result.counts["reencrypt_calls"] == 6
        assert result.counts["items_rewrapped"] == 0  # no record holds a wrapped key any more
        moved = {k: v for k, v in key_entries(world).items() if k[0] in key_table.tenant_partitions("tenant-c")}
        assert len(moved) == 6 and all(e[key_table.KMS_KEY]["S"] == key_c for e in moved.values())
        assert all(moved[k][key_table.WRAPPED] != entries_before[k][key_table.WRAPPED] for k in moved)
        for p in people:
            assert world.item("tenant-c", p) == before[p]  # references and ciphertexts untouched
            assert body_of(world.read("tenant-c", p))["data"]["email"] == PERSON["email"]
            assert body_of(world.read_masked("tenant-c", p))["data"]["email"] == "g***@example.com"
        assert entry_of(world, world.item("tenant-d", other), KC)[key_table.KMS_KEY]["S"] == world.shared
        verify = _rewrap(world, plan, "j1-verify", verify=True)
        assert verify.counts["verified_keys"] == 6 and verify.counts["keys_not_under_target"] == 0
        again = _rewrap(world, plan, "j2")
        assert again.counts["keys_rewrapped"] == 0 and again.counts["keys_not_under_source"] == 6
        # Crypto-shredding: with the tenant's key disabled neither view opens any more.
        world.kms.disable_key(KeyId=world.kms.describe_key(KeyId=key_c)["KeyMetadata"]["KeyId"])
        for p in people:
            for response in (world.read("tenant-c", p), world.read_masked("tenant-c", p)):
                assert (response.status_code, body_of(response)["code"]) == (502, "key_unavailable")
        assert body_of(world.read_masked("tenant-d", other))["data"]["email"] == "g***@example.com"


def test_given_an_item_written_before_v3_then_rewrap_moves_its_inline_slots_too(aws_env: None) -> None:
    """Items written before format v3 keep their wrapped keys inline (``slots``, ``mk_<slot>``): the
    item pass moves them, each under its exact context, as before."""
    install()
    with mock_aws():
        world = tenant_world()
        person = "0123456789abcdef0123456789abcdef"
        key = world.kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]["Arn"]
        item = legacy_items.person_item("tenant-c", person, PERSON, legacy_items.moto_wrap(world.kms), kind=KIND_TENANT)
        world.ddb.put_item(TableName=world.table, Item=item)
        key_c = world.onboard("tenant-c")
        result = _rewrap(world, RewrapPlan(key, key_c, "tenant-c", "pii-vault"), "j1")
        assert result.counts["items_rewrapped"] == 1 and result.counts["masked_slots_rewrapped"] == 1
        after = world.item("tenant-c", person)
        assert after["kms_key"]["S"] == key_c and after["slots"] != item["slots"] and after["mk_0"] != item["mk_0"]
        assert body_of(world.read("tenant-c", person))["data"] == PERSON
        assert body_of(world.read_masked("tenant-c", person))["data"]["email"] == "g***@example.com"


def test_given_masked_slots_the_job_did_not_read_then_its_update_fails_and_the_reread_moves_them_too(
    aws_env: None,
) -> None:
    """A masked slot left under the shared key would survive shredding: kms_key never moves past one."""
    install()
    with mock_aws():
        world = tenant_world()
        person = "0123456789abcdef0123456789abcdef"
        wrap = legacy_items.moto_wrap(world.kms)
        before = legacy_items.person_item("tenant-c", person, PERSON, wrap, kind=KIND_TENANT)
        key_c = world.onboard("tenant-c")
        stripped = {k: v for k, v in before.items() if not k.startswith(layout.MASKED_SLOT_PREFIX)}
        plan = RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault")
        # The job reads the item without its masked slots (as before this change): kms_key must not move.
        world.ddb.put_item(TableName=world.table, Item=stripped)
        ddb, kms = rewrap_clients()
        rewrap_map = RewrapMap(KmsReEncryptor(kms, world.shared, key_c))
        process = rewrap_processor(DynamoDbSlotItems(ddb, world.table), plan, rewrap_map)
        world.ddb.put_item(TableName=world.table, Item=before)  # the masked slots are there after all
        counts = process([stripped])
        assert counts["concurrent_writes_reread"] == 1 and counts["items_rewrapped"] == 1
        after = world.item("tenant-c", person)
        assert after["kms_key"]["S"] == key_c
        assert all(after[k] != v for k, v in masked_slots(before).items())
        world.kms.disable_key(KeyId=world.kms.describe_key(KeyId=key_c)["KeyMetadata"]["KeyId"])
        response = world.read_masked("tenant-c", person)
        assert (response.status_code, body_of(response)["code"]) == (502, "key_unavailable")


def test_given_a_concurrent_write_then_rewrap_never_clobbers_it(aws_env: None) -> None:
    """An item written before v3, patched by a v3 write between the job's read and its update: the
    v3 write never touches the inline slots (its keys are references), and the job's update names
    only those, so both land whole."""
    install()
    with mock_aws():
        world = tenant_world()
        person = "0123456789abcdef0123456789abcdef"
        stale = legacy_items.person_item(
            "tenant-c", person, PERSON, legacy_items.moto_wrap(world.kms), kind=KIND_TENANT
        )
        world.ddb.put_item(TableName=world.table, Item=stale)
        with world.client("writer") as writer:  # a write lands between the job's read and its update
            send(writer, "PATCH", f"/customers/tenant-c/people/{person}", {"name": "Ada"}, **{"If-Match": '"1"'})
        fresh = world.item("tenant-c", person)
        new_shared = world.new_shared_key()
        plan = RewrapPlan(world.shared, new_shared, None, "pii-vault")
        ddb, kms = rewrap_clients()
        rewrap_map = RewrapMap(KmsReEncryptor(kms, world.shared, new_shared))
        process = rewrap_processor(DynamoDbSlotItems(ddb, world.table), plan, rewrap_map)
        counts = process([stale])
        assert counts["items_rewrapped"] == 1
        after = world.item("tenant-c", person)
        assert after["v"] == fresh["v"] and after["kms_key"]["S"] == new_shared
        assert "fn" in after and "f_name" not in after  # the write's own changes survive
        assert {k: v for k, v in after.items() if k != "slots" and k != "kms_key" and k != "mk_0"} == {
            k: v for k, v in fresh.items() if k != "slots" and k != "kms_key" and k != "mk_0"
        }
        reader = Settings(
            "reader", region=REGION, previous_kms_key_ids=(world.shared,), kms_key_id=new_shared, **CALLERS, **NO_CACHE
        )
        with world.client("reader", reader) as client:
            got = send(client, "GET", f"/customers/tenant-c/people/{person}")
        assert body_of(got)["data"]["name"] == "Ada"


def test_given_pool_keys_shared_by_many_records_then_rewrap_calls_kms_once_per_distinct_key(aws_env: None) -> None:
    install()
    with mock_aws():
        world = World()
        cached = {**world.settings("writer").__dict__, "writer_key_cache_seconds": 3600}
        writer = world.client("writer", Settings(**cached))
        with writer:
            for customer in ("t1", "t2", "t3"):
                for _ in range(3):
                    assert send(writer, "POST", f"/customers/{customer}/people", PERSON).status_code == 201
        new_shared = world.new_shared_key()
        result = _rewrap(world, RewrapPlan(world.shared, new_shared, None, "pii-vault"), "j")
        assert result.counts["keys_rewrapped"] == 2 and result.counts["items_rewrapped"] == 0
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
        with signing_as("rewrap"):
            assert cli.main([*argv, "--dry-run"]) == 0
        dry = json.loads(capsys.readouterr().out)
        assert dry["totals"]["would_rewrap_keys"] >= 1 and "verified_keys" not in dry["totals"]
        with signing_as("rewrap"):
            assert cli.main(argv) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["totals"]["keys_rewrapped"] == 2  # the record's full and masked view keys
        assert report["totals"]["verified_keys"] == 2 and report["totals"].get("keys_not_under_target", 0) == 0
        assert body_of(world.read("tenant-c", person))["data"]["email"] == PERSON["email"]

        # The shredding step needs the operator's KMS rights: the whole local run is the operator's.
        with operator_code(OFFBOARD_SHRED):
            assert cli.main(["offboard", "--customer", "tenant-c", "--shred-key", "--deletion-days", "7"]) == 0
        offboarded = json.loads(capsys.readouterr().out)
        assert offboarded["totals"]["deleted"] == 1
        assert offboarded["segments"][-1]["shredded"] is True
        assert world.kms.describe_key(KeyId=key_c)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_given_slots_no_blob_names_any_more_then_rewrap_removes_them_and_the_record_moves_whole(
    aws_env: None,
) -> None:
    """A v3 write of every field of an item written before v3 leaves its inline slots naming nothing
    (both views): the job removes those slots (as read) instead of leaving them on the old key."""
    install()
    with mock_aws():
        world = tenant_world()
        person = "0123456789abcdef0123456789abcdef"
        item = legacy_items.person_item("tenant-c", person, PERSON, legacy_items.moto_wrap(world.kms), kind=KIND_TENANT)
        world.ddb.put_item(TableName=world.table, Item=item)
        path = f"/customers/tenant-c/people/{person}"
        with world.client("writer") as writer:
            assert send(writer, "PATCH", path, PERSON, **{"If-Match": '"1"'}).status_code == 200
        before = world.item("tenant-c", person)
        assert set(before["slots"]["M"]) == {"_created"} and "mk_0" in before  # named by f__created only, and nothing
        key_c = world.onboard("tenant-c")
        plan = RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault")
        dry = _rewrap(world, RewrapPlan(world.shared, key_c, "tenant-c", "pii-vault", dry_run=True), "j-dry")
        assert dry.counts["would_remove_unreferenced_slots"] == 1 and world.item("tenant-c", person) == before
        result = _rewrap(world, plan, "j1")
        assert result.counts["unreferenced_slots_removed"] == 1 and result.counts["items_rewrapped"] == 1
        after = world.item("tenant-c", person)
        assert "mk_0" not in after and after["kms_key"]["S"] == key_c
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
        with operator_code(OFFBOARD_SHRED):
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
    from tools.recorder import principals
    from tools.streampoll import StreamPoller, streams_client

    install()
    with mock_aws():
        world = tenant_world()
        key_v = world.onboard("victim")
        world.create("victim")
        key_id = world.kms.describe_key(KeyId=key_v)["KeyMetadata"]["KeyId"]
        world.kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)  # shredded: its records no longer open
        other = world.create("other")
        indexer = build_indexer(
            world.settings("indexer"), Clients.of(stage_client("indexer", "kms"), stage_client("indexer", "dynamodb"))
        )
        arn = world.ddb.describe_table(TableName=world.table)["Table"]["LatestStreamArn"]
        parked: list[dict[str, Any]] = []
        streams = streams_client(principals.stage_session("indexer", REGION))  # as its event source mapping
        poller = StreamPoller(streams, arn, indexer.handle_records, park=parked.append)
        with caplog.at_level(logging.ERROR):
            poller.drain()
        assert poller.counts["unprocessable"] == 1 and poller.counts["written"] == 1 and parked == []
        assert any(r.getMessage().startswith(f"{SKIPPED_MESSAGE} (key_unavailable)") for r in caplog.records)
        with world.client("reader") as reader:
            found = send(reader, "POST", "/customers/other/people/search", {"email": PERSON["email"]})
        assert [p["id"] for p in body_of(found)["items"]] == [other]


def test_given_tenant_scoped_and_own_key_tenants_then_the_indexer_opens_their_emails_and_search_finds_them(
    aws_env: None,
) -> None:
    """The indexer on its own credentials decrypts an email under the tenant context of the shared
    key (tenant scope) and under a tenant's own key (found through the registry)."""
    from chalicelib.stages.wiring import Clients, build_indexer
    from tools.recorder import principals
    from tools.streampoll import StreamPoller, streams_client

    install()
    with mock_aws():
        world = tenant_world()
        world.onboard("tenant-own")
        people = {customer: world.create(customer) for customer in ("tenant-own", "tenant-shared")}
        indexer = build_indexer(
            world.settings("indexer"), Clients.of(stage_client("indexer", "kms"), stage_client("indexer", "dynamodb"))
        )
        arn = world.ddb.describe_table(TableName=world.table)["Table"]["LatestStreamArn"]
        streams = streams_client(principals.stage_session("indexer", REGION))  # as its event source mapping
        StreamPoller(streams, arn, indexer.handle_records).drain()
        for customer, person in people.items():
            with world.client("reader") as reader:
                found = send(reader, "POST", f"/customers/{customer}/people/search", {"email": PERSON["email"]})
            assert [p["id"] for p in body_of(found)["items"]] == [person]
