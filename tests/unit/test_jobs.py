"""The jobs as services over their store protocols, against the in-memory fakes (tests/job_fakes.py):
the segment frame, offboarding, the ledger's replay after a restore, the rewrap's lost races."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from chalicelib.service.jobs import Control, SegmentRun, run_segment
from chalicelib.service.offboard import MAX_PASSES, Offboarding, OffboardRun
from chalicelib.service.replay import Replay, ReplayPlan
from chalicelib.store import layout, tables
from chalicelib.store.checkpoints import Checkpoint, MemoryCheckpoints
from chalicelib.store.ledger import PERSON, SECRET, TENANT, TENANT_DONE, LedgerEntry
from tests.job_fakes import FakeLedger, FakeReferences, FakeTable

T = dt.datetime(2026, 11, 20, 12, 0, 0, tzinfo=dt.UTC)  # the restore point
BEFORE, AFTER = "2026-11-19T12:00:00.000Z", "2026-11-21T12:00:00.000Z"
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
P1, P2 = "1" * 32, "2" * 32


def person(customer: str, person_id: str, created_at: str = BEFORE) -> dict[str, Any]:
    return {**layout.person_key(customer, person_id), layout.CREATED_AT: {"S": created_at}, "f_name": {"B": b"ct"}}


def secret(customer: str, secret_id: str, versions: int, *, deleting: bool = False) -> list[dict[str, Any]]:
    head = {**layout.item_key(customer, layout.secret_head_key(secret_id)), layout.LATEST: {"N": str(versions)}}
    if deleting:
        head[layout.DELETING] = {"BOOL": True}
    return [head] + [
        {**layout.item_key(customer, layout.secret_version_key(secret_id, v)), layout.CREATED_AT: {"S": BEFORE}}
        for v in range(1, versions + 1)
    ]


def keys(table: FakeTable) -> set[tuple[str, str]]:
    return set(table.items)


# -- the frame -------------------------------------------------------------------------------


def test_given_a_deadline_then_run_segment_saves_and_a_rerun_resumes_without_redoing_pages() -> None:
    data = [[{"n": i} for i in range(start, start + 3)] for start in (0, 3, 6)]
    seen: list[int] = []

    def pages(start: Any) -> tuple[list[dict[str, Any]], Any]:
        index = 0 if start is None else start["page"]
        return data[index], ({"page": index + 1} if index + 1 < len(data) else None)

    def process(items: list[dict[str, Any]]) -> Counter[str]:
        seen.extend(i["n"] for i in items)
        return Counter(done=len(items))

    checkpoints = MemoryCheckpoints()
    clock = iter([False, True])
    first = run_segment("j", 0, pages, process, Control(checkpoints, lambda: next(clock, True)))
    assert (first.done, first.pages, seen) == (False, 1, [0, 1, 2])
    second = run_segment("j", 0, pages, process, Control(checkpoints))
    assert second.done and second.counts["done"] == 9 and seen == list(range(9))
    assert run_segment("j", 0, pages, process, Control(checkpoints)).pages == 3  # done: nothing again
    assert seen == list(range(9))


# -- offboarding -----------------------------------------------------------------------------


class Offboard:
    def __init__(self, *items: dict[str, Any]) -> None:
        self.table, self.references, self.ledger = FakeTable(items), FakeReferences(), FakeLedger()
        self.checkpoints = MemoryCheckpoints()
        self.service = Offboarding(self.table, self.references, self.ledger, lambda: BEFORE)

    def run(self, segment: int = 0, dry_run: bool = False, job: str = "o1") -> Checkpoint:
        return self.service.run(OffboardRun(job, "acme", segment, 1, dry_run), Control(self.checkpoints))

    def kinds(self) -> list[str]:
        return sorted(e.kind for e in self.ledger.entries())


def test_given_a_tenant_then_its_items_and_references_go_the_erasure_comes_first_and_empty_is_verified() -> None:
    world = Offboard(person("acme", P1), *secret("acme", "tok", 2), person("globex", P2))
    world.references.add("acme", "person", P1, "rec-1", 9)
    world.references.add("acme", "secret", "tok", "rec-2", 9)
    world.references.add("acme", "secret", "tok", "rec-3", 9)
    for record in ("rec-1", "rec-2", "rec-3", "rec-globex"):
        world.references.put({tables.IDEMPOTENCY_ID: {"S": record}})

    dry = world.run(dry_run=True, job="dry")
    assert dry.counts["would_delete"] == 4 and world.ledger.items == {} and len(world.table.items) == 5

    items = world.run()
    assert items.done and items.counts["deleted"] == 4 and items.counts["people"] == 1
    assert keys(world.table) == {("C#globex", f"P#{P2}")}
    assert world.kinds() == [TENANT, TENANT_DONE]
    references = world.run(segment=1)
    assert references.done and references.counts["idempotency_items"] == 5  # two references, three records
    assert set(world.references.items) == {"rec-globex"}


def test_given_a_forged_done_checkpoint_then_offboarding_still_deletes_everything_before_it_reports_done() -> None:
    world = Offboard(person("acme", P1), *secret("acme", "tok", 3))
    world.checkpoints.save(Checkpoint("o1", 0, done=True, pages=1))  # planted in the jobs table
    result = world.run()
    assert result.done and result.counts["passes_repeated"] == 1 and result.counts["deleted"] == 5
    assert world.table.items == {} and world.kinds() == [TENANT, TENANT_DONE]  # the erasure is on record


def test_given_items_that_keep_appearing_then_the_segment_is_not_done_and_the_tenant_not_marked_empty() -> None:
    world = Offboard(person("acme", P1))

    class Refilled(FakeTable):
        written = 0

        def key_page(self, customer_id: str, start: Any) -> Any:
            page = super().key_page(customer_id, start)
            self.written += 1
            self.put(person("acme", f"{self.written + 7:032x}"))  # a writer that was not stopped
            return page

    world.table = Refilled(world.table.items.values())
    world.service = Offboarding(world.table, world.references, world.ledger, lambda: BEFORE)
    result = world.run()
    assert not result.done and result.counts["items_left"] == 1
    assert result.counts["passes_repeated"] == MAX_PASSES - 1
    assert world.kinds() == [TENANT]


# -- replay after a restore ------------------------------------------------------------------


class Restore:
    def __init__(self, *items: dict[str, Any], witness: bool = True) -> None:
        self.table, self.ledger = FakeTable(items), FakeLedger()
        self.witness = FakeLedger() if witness else None

    def append(self, kind: str, customer: str, record_id: str, at: str, *, by_restore_point: bool = False) -> None:
        entry = LedgerEntry(kind, customer, record_id, at)
        self.ledger.append(entry)
        if by_restore_point and self.witness is not None:
            self.witness.append(entry)  # appended before T: the ledger restored to T holds it

    def replay(self, **plan: Any) -> Counter[str]:
        replay = Replay(self.table, self.ledger, ReplayPlan(T, NOW, **plan), self.witness)
        return replay.segment(SegmentRun("r", 0, 1), Control()).counts


def test_given_an_erased_person_whose_restored_copy_says_created_in_9999_then_it_is_deleted_by_id() -> None:
    world = Restore(person("acme", P1, created_at="9999-12-31T23:59:59.999Z"), person("acme", P2))
    world.append(PERSON, "acme", P1, AFTER)
    counts = world.replay()
    assert counts["deleted"] == 1 and "kept_newer" not in counts
    assert keys(world.table) == {("C#acme", f"P#{P2}")}


def test_given_a_tenant_entry_dated_in_the_future_then_it_is_refused_reported_and_nothing_goes() -> None:
    world = Restore(person("victim", P1), person("victim", P2))
    world.append(TENANT, "victim", "victim", "9999-12-31T23:59:59.999Z")
    # The planted entry, in the shape before partitions named their kind.
    world.ledger.put(
        {
            tables.LEDGER_PK: {"S": "victim"},
            tables.LEDGER_SK: {"S": "9999-12-31T23:59:59.999Z#tenant#victim"},
            tables.LEDGER_KIND: {"S": "tenant"},
            tables.LEDGER_RECORD_ID: {"S": "victim"},
            tables.LEDGER_ERASED_AT: {"S": "9999-12-31T23:59:59.999Z"},
        }
    )
    counts = world.replay()
    assert counts["refused_future_dated"] == 2 and counts["entries_legacy"] == 1
    assert len(world.table.items) == 2 and "deleted" not in counts


def test_given_an_entry_the_ledger_held_at_the_restore_point_but_dated_after_it_then_it_is_refused() -> None:
    world = Restore(*secret("acme", "tok", 2), *secret("acme", "key2", 1))
    world.append(SECRET, "acme", "tok", AFTER, by_restore_point=True)  # forward-dated when appended
    world.append(SECRET, "acme", "key2", AFTER)  # appended after T: a real erasure since
    counts = world.replay()
    assert counts["refused_dated_after_append"] == 1 and counts["deleted"] == 2
    assert {sk for _pk, sk in world.table.items} == {"S#tok", "S#tok#V#0000000001", "S#tok#V#0000000002"}


def test_given_no_witness_then_entries_dated_after_the_restore_point_are_applied_and_counted_unchecked() -> None:
    world = Restore(*secret("acme", "tok", 1), witness=False)
    world.append(SECRET, "acme", "tok", AFTER)
    counts = world.replay()
    assert counts["unchecked_append_time"] == 1 and counts["deleted"] == 2 and world.table.items == {}


@pytest.mark.parametrize(
    ("deleting", "expected_left"),
    [(False, 3), (True, 0)],
    ids=["created-again-before-the-restore-point", "deletion-under-way-at-the-restore-point"],
)
def test_given_a_secret_erased_before_the_restore_point_then_only_leftovers_go(
    deleting: bool, expected_left: int
) -> None:
    world = Restore(*secret("acme", "tok", 2, deleting=deleting))
    world.append(SECRET, "acme", "tok", BEFORE, by_restore_point=True)
    counts = world.replay()
    assert len(world.table.items) == expected_left
    assert counts["kept_recreated" if not deleting else "deleted"] == 3


def test_given_tenant_entries_then_after_the_restore_point_all_goes_before_it_only_leftovers() -> None:
    items = [person("acme", P1), person("globex", P2), *secret("initech", "tok", 1)]
    world = Restore(*items)
    world.append(TENANT, "acme", "acme", AFTER)  # offboarded after T: everything at T predates it
    world.append(TENANT, "globex", "globex", BEFORE, by_restore_point=True)  # under way at T: leftovers
    world.append(TENANT, "initech", "initech", BEFORE, by_restore_point=True)
    world.append(TENANT_DONE, "initech", "initech", BEFORE, by_restore_point=True)  # empty before T: reused
    counts = world.replay()
    assert {pk for pk, _sk in world.table.items} == {"C#initech"}
    assert counts["deleted"] == 2 and counts["kept_recreated"] == 2


@pytest.mark.parametrize(
    "item",
    [
        {
            **LedgerEntry(PERSON, "acme", P1, AFTER).item(),
            tables.LEDGER_KIND: {"S": "tenant"},
        },  # kind not its partition's
        LedgerEntry(PERSON, "acme", "../x", AFTER).item(),
        LedgerEntry(PERSON, "acme", P1, "yesterday").item(),
        LedgerEntry(TENANT, "acme", "globex", AFTER).item(),  # a tenant entry naming another tenant
        {tables.LEDGER_PK: {"S": "person#acme"}},
    ],
    ids=["kind-mismatch", "bad-id", "bad-time", "other-tenant", "no-attributes"],
)
def test_given_a_malformed_ledger_item_then_it_is_refused_and_reported(item: dict[str, Any]) -> None:
    world = Restore(person("acme", P1), person("globex", P2))
    world.ledger.put({tables.LEDGER_SK: {"S": "x"}, **item})
    counts = world.replay()
    assert counts == Counter({"entries_malformed": 1, "items": 1}) and len(world.table.items) == 2


def test_given_a_dry_run_then_the_replay_counts_and_deletes_nothing() -> None:
    world = Restore(person("acme", P1), *secret("acme", "tok", 1))
    world.append(PERSON, "acme", P1, AFTER)
    world.append(SECRET, "acme", "tok", AFTER)
    counts = world.replay(dry_run=True)
    assert counts["would_delete"] == 3 and len(world.table.items) == 3
