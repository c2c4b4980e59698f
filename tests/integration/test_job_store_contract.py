"""One contract, two implementations: the jobs' DynamoDB stores (over moto) and their in-memory
fakes (tests/job_fakes.py) must agree, so the service tests against the fakes mean something."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.store import layout, tables
from chalicelib.store.checkpoints import Checkpoint, DynamoDbCheckpoints, MemoryCheckpoints
from chalicelib.store.job_items import (
    FULL,
    MASKED,
    DynamoDbIndexedScan,
    DynamoDbSlotItems,
    DynamoDbTenantItems,
    places,
)
from chalicelib.store.ledger import TENANT, TENANT_DONE, DynamoDbLedger, LedgerEntry
from chalicelib.store.references import DynamoDbReferences
from infra.local import bootstrap
from tests.integration.conftest import REGION
from tests.job_fakes import FakeLedger, FakeReferences, FakeTable
from tests.request_proof import operator_code

TABLE = "pii-vault"


@dataclass
class Stores:
    seed: Any  # item -> None
    seed_reference: Any
    items: Any  # TenantItems + RestoredItems + IndexedScan + SlotItems
    ledger: Any
    references: Any
    checkpoints: Any


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Stores]:
    if request.param == "memory":
        table, references = FakeTable(), FakeReferences()
        yield Stores(table.put, references.put, table, FakeLedger(), references, MemoryCheckpoints())
        return
    with mock_aws():
        kms, ddb = boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        resources = bootstrap(kms, ddb)

        class Items(DynamoDbTenantItems, DynamoDbIndexedScan, DynamoDbSlotItems):
            pass

        def seed(item: dict[str, Any]) -> None:
            ddb.put_item(TableName=TABLE, Item=item)

        def seed_reference(item: dict[str, Any]) -> None:
            ddb.put_item(TableName=resources["idempotency_table_name"], Item=item)

        # One client exercises every stage's adapter (and seeds): the operator's, declared. Each
        # stage's own use of these adapters is judged where it signs as itself (test_jobs.py, ...).
        with operator_code("the job stores' contract suite: every adapter on one operator client"):
            yield Stores(
                seed,
                seed_reference,
                Items(ddb, TABLE),
                DynamoDbLedger(ddb, resources["ledger_table_name"]),
                DynamoDbReferences(ddb, resources["idempotency_table_name"]),
                DynamoDbCheckpoints(ddb, resources["jobs_table_name"]),
            )


def person(customer: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        **layout.person_key(customer, f"{n:032x}"),
        layout.VERSION: {"N": "1"},
        layout.CREATED_AT: {"S": "t"},
        "f_email": {"B": b"ct-email"},
        "f_name": {"B": b"ct-name"},
        **extra,
    }


def every_page(page: Any) -> list[dict[str, Any]]:
    out, start = [], None
    while True:
        items, start = page(start)
        out += items
        if start is None:
            return out


def test_given_a_tenant_then_key_pages_cover_its_items_once_keys_only(stores: Stores, monkeypatch: Any) -> None:
    from chalicelib.store import job_items

    monkeypatch.setattr(job_items, "PAGE_SIZE", 3)
    for n in range(7):
        stores.seed(person("acme", n))
    stores.seed(person("globex", 99))
    found = every_page(lambda start: stores.items.key_page("acme", start))
    assert sorted(i[layout.SK]["S"] for i in found) == sorted(f"P#{n:032x}" for n in range(7))
    assert all(set(i) == {layout.PK, layout.SK} for i in found)


def test_given_deletes_then_true_for_an_item_false_when_gone_and_holds_items_follows(stores: Stores) -> None:
    stores.seed(person("acme", 1))
    key = layout.person_key("acme", f"{1:032x}")
    assert stores.items.holds_items("acme") and not stores.items.holds_items("globex")
    assert stores.items.delete(key) is True
    assert stores.items.delete(key) is False
    assert not stores.items.holds_items("acme")


def test_given_secrets_with_a_shared_prefix_then_secret_items_are_exactly_one_secrets_with_its_mark(
    stores: Stores,
) -> None:
    stores.seed({**layout.item_key("acme", "S#tok"), layout.DELETING: {"BOOL": True}, layout.LATEST: {"N": "2"}})
    stores.seed({**layout.item_key("acme", "S#tok#V#0000000001"), layout.CREATED_AT: {"S": "t"}})
    stores.seed(layout.item_key("acme", "S#token"))  # another secret whose id extends this one
    stores.seed(layout.item_key("globex", "S#tok"))
    found = stores.items.secret_items("acme", "tok")
    assert sorted(i[layout.SK]["S"] for i in found) == ["S#tok", "S#tok#V#0000000001"]
    head = next(i for i in found if i[layout.SK]["S"] == "S#tok")
    assert head[layout.DELETING] == {"BOOL": True} and layout.LATEST not in head


def test_given_scan_segments_then_they_partition_the_people_through_the_indexer_projection(stores: Stores) -> None:
    for n in range(9):
        stores.seed(person(f"t{n % 3}", n))
    found: list[dict[str, Any]] = []
    for segment in range(3):
        found += every_page(lambda start, s=segment: stores.items.scan_page(s, 3, start))
    assert len(found) == 9 and len({i[layout.SK]["S"] for i in found}) == 9
    assert all(set(i) <= set(layout.INDEXER_READ_ATTRIBUTES) and "f_email" in i for i in found)


def slotted(**extra: Any) -> dict[str, Any]:
    return person(
        "acme",
        5,
        **{
            layout.KMS_KEY: {"S": "old-key"},
            layout.SLOTS: {"M": {"0": {"B": b"k0"}, "email": {"B": b"k1"}}},
            "mk_0": {"B": b"m0"},
            **extra,
        },
    )


def test_given_an_unchanged_item_then_update_slots_moves_removes_and_sets_the_key(stores: Stores) -> None:
    item = slotted()
    stores.seed(item)
    new = {(FULL, "0"): b"n0", (MASKED, "0"): b"nm0"}
    assert stores.items.update_slots(item, new, "new-key", remove=[(FULL, "email")]) is True
    after = stores.items.get(layout.person_key("acme", f"{5:032x}"))
    assert places(after) == {(FULL, "0"): b"n0", (MASKED, "0"): b"nm0"}
    assert after[layout.KMS_KEY] == {"S": "new-key"} and after["f_email"] == item["f_email"]


@pytest.mark.parametrize(
    "change",
    [
        {layout.SLOTS: {"M": {"0": {"B": b"k0"}, "email": {"B": b"k1"}, "name": {"B": b"k2"}}}},  # a slot added
        {layout.SLOTS: {"M": {"0": {"B": b"other"}, "email": {"B": b"k1"}}}},  # the slot moved replaced
        {"mk_name": {"B": b"m9"}},  # a masked slot the job did not read
        {layout.KMS_KEY: {"S": "writer-key"}},
    ],
    ids=["slot-added", "slot-replaced", "masked-slot-added", "kms-key"],
)
def test_given_a_write_between_read_and_update_then_update_slots_changes_nothing(
    stores: Stores, change: dict[str, Any]
) -> None:
    item = slotted()
    stores.seed({**item, **change})
    assert stores.items.update_slots(item, {(FULL, "0"): b"n0"}, "new-key") is False
    after = stores.items.get(layout.person_key("acme", f"{5:032x}"))
    assert after == {**item, **change}


def test_given_one_tenant_then_the_slot_pages_are_its_partition_on_segment_zero_only(stores: Stores) -> None:
    stores.seed(person("acme", 1))
    stores.seed(person("globex", 2))
    assert [i[layout.PK]["S"] for i in every_page(lambda s: stores.items.page("acme", 0, 4, s))] == ["C#acme"]
    assert stores.items.page("acme", 1, 4, None) == ([], None)
    everyone = [i for seg in range(2) for i in every_page(lambda s, seg=seg: stores.items.page(None, seg, 2, s))]
    assert sorted(i[layout.PK]["S"] for i in everyone) == ["C#acme", "C#globex"]


def test_given_ledger_appends_then_pages_holds_and_tenant_emptied_agree(stores: Stores) -> None:
    stores.ledger.record_tenant_erasure("acme", "2026-01-01T00:00:00.000Z")
    stores.ledger.record_tenant_erasure("acme", "2026-01-01T00:00:00.000Z")  # once only
    stores.ledger.record_tenant_empty("acme", "2026-01-02T00:00:00.000Z")
    stores.ledger.record_tenant_empty("globex", "2026-01-03T00:00:00.000Z")
    items = [i for s in range(2) for i in every_page(lambda start, s=s: stores.ledger.page(s, 2, start))]
    assert len(items) == 3
    assert all(i[tables.LEDGER_PK]["S"].startswith("tenant#") for i in items)
    assert stores.ledger.holds(LedgerEntry(TENANT, "acme", "acme", "2026-01-01T00:00:00.000Z"))
    assert not stores.ledger.holds(LedgerEntry(TENANT, "acme", "acme", "2026-01-01T00:00:00.001Z"))
    [done] = stores.ledger.tenant_emptied("acme")
    assert (done.kind, done.erased_at) == (TENANT_DONE, "2026-01-02T00:00:00.000Z")


def test_given_references_then_forget_removes_every_record_named_and_pages_keep_one_tenant(stores: Stores) -> None:
    for record in ("r1", "r2", "r3", "other"):
        stores.seed_reference({tables.IDEMPOTENCY_ID: {"S": record}})
    stores.references.add("acme", "secret", "tok", "r1", 10)
    stores.references.add("acme", "secret", "tok", "r2", 20)
    stores.references.add("acme", "person", "p", "r3", 10)
    stores.references.add("acmex", "person", "p", "other", 10)  # a tenant id that extends acme's
    refs = [i for s in range(2) for i in every_page(lambda st, s=s: stores.references.page("acme", s, 2, st))]
    assert sorted(tables.ref_targets(i) for i in refs) == [["r1", "r2"], ["r3"]]
    assert stores.references.forget("acme", "secret", "tok") == 2
    assert stores.references.forget("acme", "secret", "tok") == 0
    left = [i for s in range(1) for i in every_page(lambda st: stores.references.page("acme", 0, 1, st))]
    assert [tables.ref_targets(i) for i in left] == [["r3"]]


def test_given_a_checkpoint_then_it_loads_as_saved(stores: Stores) -> None:
    from collections import Counter

    assert stores.checkpoints.load("j", 0) is None
    saved = Checkpoint("j", 0, {"pk": {"S": "C#acme"}, "sk": {"S": "P#1"}}, Counter(deleted=3), False, 2)
    stores.checkpoints.save(saved)
    assert stores.checkpoints.load("j", 0) == saved
