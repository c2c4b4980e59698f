"""Beacons, the indexer's stream logic, search and the job frame, against fakes."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.domain.validation import PERSON_FIELDS, parse_search
from chalicelib.envelope.format import Opener, Sealer
from chalicelib.keys.beacons import BeaconKeys, normalise_email, normalise_stored_email
from chalicelib.service import ReaderService, WriterService
from chalicelib.service.indexer import REMOVED, SKIPPED, UNCHANGED, WRITTEN, Indexer, StreamChange
from chalicelib.store import layout
from chalicelib.store.person_item import person_item
from chalicelib.support.errors import ValidationError
from tests.fakes import FakeKms, FixedClock, InMemoryStore

PERSON: dict[str, Any] = {
    "name": "Wilhelmina",
    "surname": "Castellanos",
    "email": "Wilhelmina.C@Example.ORG",
    "dob": "1970-01-02",
    "address": {"line1": "9 Canal Row", "city": "Ghent", "postal_code": "9000", "country": "BE"},
}


class FakeMac:
    def __init__(self) -> None:
        self.calls = 0

    def mac(self, message: bytes) -> bytes:
        self.calls += 1
        return hmac.new(b"k" * 32, message, hashlib.sha256).digest()


class FakeBeacons:
    """The beacon table with the DynamoDB store's semantics: never older over newer, never
    after the person's REMOVE (a tombstone); reads of the PII table through the indexer's projection."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.beacons: dict[tuple[str, str], tuple[bytes, int]] = {}
        self.gone: set[tuple[str, str]] = set()
        self.writes = 0
        self.reads = 0

    def set_beacon(self, customer_id: str, person_id: str, version: int, beacon: bytes) -> bool:
        current = self.beacons.get((customer_id, person_id))
        if (customer_id, person_id) in self.gone or (current and current[1] >= version):
            return False
        self.writes += 1
        self.beacons[(customer_id, person_id)] = (beacon, version)
        return True

    def forget(self, customer_id: str, person_id: str) -> None:
        self.writes += 1
        self.beacons.pop((customer_id, person_id), None)
        self.gone.add((customer_id, person_id))

    def find(self, customer_id: str, beacon: bytes, limit: int = 100) -> list[str]:
        return [pid for (cid, pid), (b, _) in self.beacons.items() if cid == customer_id and b == beacon][:limit]

    def indexed_item(self, customer_id: str, person_id: str) -> dict[str, Any] | None:
        """The GetItem with the indexer's projection: only ``INDEXER_READ_ATTRIBUTES`` come back."""
        self.reads += 1
        if (customer_id, person_id) not in self.store.people:
            return None
        whole = person_item(self.store.people[(customer_id, person_id)])
        return {name: value for name, value in whole.items() if name in layout.INDEXER_READ_ATTRIBUTES}


@dataclass(frozen=True)
class World:
    """The search path's parts over in-memory fakes: the services and the stores they share."""

    kms: FakeKms
    store: InMemoryStore
    mac: FakeMac
    keys: BeaconKeys
    beacons: FakeBeacons
    writer: WriterService
    reader: ReaderService
    indexer: Indexer


def make_world() -> World:
    """Fake KMS, store and MAC, and the services over them (the ``world`` fixture's value)."""
    kms, store, mac = FakeKms(), InMemoryStore(), FakeMac()
    keys = BeaconKeys(mac)
    beacons = FakeBeacons(store)
    opener = Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver())
    return World(
        kms=kms,
        store=store,
        mac=mac,
        keys=keys,
        beacons=beacons,
        writer=WriterService(store, Sealer(kms.data_keys(), "pii-vault"), clock=FixedClock()),
        reader=ReaderService(store, opener, beacon_keys=keys, beacons=beacons),
        indexer=Indexer(opener, keys, beacons),
    )


@pytest.fixture
def world() -> World:
    return make_world()


def item(store: InMemoryStore, customer: str, person_id: str, **extra: Any) -> dict[str, Any]:
    record = store.people[(customer, person_id)]
    return {**person_item(record), **extra}


def index_all(world: World) -> Counter[str]:
    return Counter(world.indexer.index_item(item(world.store, c, p)) for c, p in list(world.store.people))


# -- beacons ---------------------------------------------------------------------------------


def test_given_emails_then_domain_case_and_spaces_normalise_but_the_local_part_keeps_its_case() -> None:
    assert normalise_email("  Ann.Lee@EXAMPLE.com ") == "Ann.Lee@example.com"
    assert normalise_email("Ann.Lee@example.com") != normalise_email("ann.lee@example.com")
    assert normalise_email("x@BÜCHER.de") == "x@bücher.de"
    assert normalise_stored_email("legacy value@EXAMPLE.COM") == "legacy value@example.com"
    with pytest.raises(ValidationError) as raised:
        normalise_email("ann@@example.com")
    assert "ann" not in raised.value.message and raised.value.field == "email"


def test_given_many_tenants_then_one_mac_call_and_unrelated_beacons_per_tenant() -> None:
    mac = FakeMac()
    keys = BeaconKeys(mac)
    beacons = {keys.beacon(f"t{n}", "a@example.com") for n in range(50)}
    assert len(beacons) == 50 and mac.calls == 1
    assert keys.beacon("t1", "a@example.com") == keys.beacon("t1", "a@example.com")
    assert len(keys.beacon("t1", "a@example.com")) == 16


@pytest.mark.parametrize("length", [2, 8, 32])
def test_given_a_beacon_length_then_beacons_are_that_long_and_prefixes_of_the_full_mac(length: int) -> None:
    full, short = BeaconKeys(FakeMac(), length=32), BeaconKeys(FakeMac(), length=length)
    assert short.beacon("t", "a@b.co") == full.beacon("t", "a@b.co")[:length]


@pytest.mark.parametrize("length", [0, 1, 33])
def test_given_an_out_of_range_length_then_refused(length: int) -> None:
    with pytest.raises(ValueError):
        BeaconKeys(FakeMac(), length=length)


# -- indexer ---------------------------------------------------------------------------------


def test_given_a_person_when_indexed_then_search_finds_only_exact_matches(world: World) -> None:
    created = world.writer.create_person("acme", PERSON)
    world.writer.create_person("acme", {**PERSON, "email": "someone.else@example.org"})
    assert index_all(world) == Counter({WRITTEN: 2})
    found = world.reader.search_people("acme", "Wilhelmina.C@example.org", PERSON_FIELDS)
    assert [v.id for v in found] == [created.id]
    assert found[0].data == {**PERSON, "email": "Wilhelmina.C@example.org"}
    assert world.reader.search_people("other", PERSON["email"], PERSON_FIELDS) == []
    assert index_all(world) == Counter({UNCHANGED: 2})  # already there: no writes


def test_given_a_short_beacon_with_collisions_then_search_filters_false_positives(world: World) -> None:
    keys = BeaconKeys(world.mac, length=2)
    reader = ReaderService(
        world.store,
        Opener(world.kms.decryptor(), "pii-vault", resolver=world.kms.resolver()),
        beacon_keys=keys,
        beacons=world.beacons,
    )
    indexer = Indexer(Opener(world.kms.decryptor(), "pii-vault", resolver=world.kms.resolver()), keys, world.beacons)
    seen: dict[bytes, str] = {}
    for n in range(100_000):  # 2-byte beacons: a shared one turns up after a few hundred emails
        email = f"p{n}@example.org"
        beacon = keys.beacon("acme", email)
        if beacon in seen:
            pair = (seen[beacon], email)
            break
        seen[beacon] = email
    ids = [world.writer.create_person("acme", {**PERSON, "email": email}).id for email in pair]
    for pid in ids:
        indexer.index_item(item(world.store, "acme", pid))
    assert sorted(world.beacons.find("acme", keys.beacon("acme", pair[0]))) == sorted(ids)  # both candidates
    for email, pid in zip(pair, ids, strict=True):
        assert [v.id for v in reader.search_people("acme", email, PERSON_FIELDS)] == [pid]  # only the true match


def test_given_stream_changes_then_duplicates_and_unchanged_emails_write_nothing(world: World) -> None:
    indexer, beacons = world.indexer, world.beacons
    pid = world.writer.create_person("acme", PERSON).id
    key = layout.person_key("acme", pid)
    assert indexer.handle(StreamChange("INSERT", key)) == WRITTEN
    writes = beacons.writes
    assert indexer.handle(StreamChange("INSERT", key)) == UNCHANGED  # delivered twice: nothing written
    world.writer.patch_person("acme", pid, {"name": "Mina"}, None)
    assert indexer.handle(StreamChange("MODIFY", key)) == WRITTEN  # the same beacon, from the new version
    assert beacons.beacons[("acme", pid)][1] == 2 and beacons.writes == writes + 1
    secret_key = {layout.PK: {"S": "C#acme"}, layout.SK: {"S": "S#tok#V#0000000001"}}
    reads, writes = beacons.reads, beacons.writes
    assert indexer.handle(StreamChange("INSERT", secret_key)) == SKIPPED
    assert indexer.handle(StreamChange("REMOVE", secret_key)) == SKIPPED
    assert (beacons.reads, beacons.writes) == (reads, writes)  # a secret is never read, nothing written


def test_given_a_removed_person_then_its_beacon_goes_and_a_late_write_cannot_bring_it_back(
    world: World,
) -> None:
    indexer = world.indexer
    pid = world.writer.create_person("acme", PERSON).id
    key = layout.person_key("acme", pid)
    late = item(world.store, "acme", pid)  # what a backfill racing the delete has read
    assert indexer.handle(StreamChange("INSERT", key)) == WRITTEN
    world.writer.delete_person("acme", pid, None)
    assert indexer.handle(StreamChange("MODIFY", key)) == SKIPPED  # gone by the time it is read
    assert indexer.handle(StreamChange("REMOVE", key)) == REMOVED
    assert ("acme", pid) not in world.beacons.beacons
    assert indexer.index_item(late) == UNCHANGED  # refused by the tombstone
    assert ("acme", pid) not in world.beacons.beacons
    assert world.reader.search_people("acme", PERSON["email"], PERSON_FIELDS) == []


def test_given_a_keys_only_stream_record_then_the_indexer_reads_only_the_email_attributes(
    world: World,
) -> None:
    pid = world.writer.create_person("acme", PERSON).id
    record = {"eventName": "INSERT", "dynamodb": {"Keys": layout.person_key("acme", pid)}}
    assert world.indexer.handle_records([record]) == Counter({WRITTEN: 1})
    assert world.beacons.reads == 1
    v3 = ["pk", "sk", "v", "c", "u", "fe", "kc", "k0", "ke"]  # format v3: the email, the slots it may name
    earlier = ["version", "created_at", "updated_at", "slots", "f_email"]  # items written before, as stored
    assert sorted(layout.INDEXER_READ_ATTRIBUTES) == sorted([*v3, *earlier])
    assert [v.id for v in world.reader.search_people("acme", PERSON["email"], PERSON_FIELDS)] == [pid]


def test_given_a_stale_or_late_stream_record_then_the_current_item_decides(world: World) -> None:
    indexer = world.indexer
    pid = world.writer.create_person("acme", PERSON).id
    key = layout.person_key("acme", pid)
    world.writer.replace_person("acme", pid, {**PERSON, "email": "new@example.org"}, None)
    # The INSERT of version 1 arrives after the replace: the indexer reads version 2.
    assert indexer.handle(StreamChange("INSERT", key)) == WRITTEN
    assert world.beacons.beacons[("acme", pid)][1] == 2
    assert indexer.handle(StreamChange("MODIFY", key)) == UNCHANGED
    assert [v.id for v in world.reader.search_people("acme", "new@example.org", PERSON_FIELDS)] == [pid]
    assert world.reader.search_people("acme", PERSON["email"], PERSON_FIELDS) == []


def test_given_a_changed_email_then_a_stale_beacon_never_answers(world: World) -> None:
    """Between a PATCH of the email and its indexing, the old beacon still points at the person:
    the reader re-checks the decrypted email and answers nobody for the old address."""
    pid = world.writer.create_person("acme", PERSON).id
    index_all(world)
    world.writer.patch_person("acme", pid, {"email": "moved@example.org"}, None)
    assert world.beacons.find("acme", world.keys.search_beacon("acme", PERSON["email"])) == [pid]
    assert world.reader.search_people("acme", PERSON["email"], PERSON_FIELDS) == []
    assert index_all(world) == Counter({WRITTEN: 1})
    assert world.beacons.find("acme", world.keys.search_beacon("acme", PERSON["email"])) == []
    assert [v.id for v in world.reader.search_people("acme", "moved@example.org", PERSON_FIELDS)] == [pid]


def test_given_a_record_older_than_the_stored_beacon_then_unchanged_and_kept(world: World) -> None:
    pid = world.writer.create_person("acme", PERSON).id
    old = item(world.store, "acme", pid)
    world.writer.replace_person("acme", pid, {**PERSON, "email": "new@example.org"}, None)
    assert world.indexer.index_item(item(world.store, "acme", pid)) == WRITTEN
    assert world.indexer.index_item(old) == UNCHANGED
    assert [v.id for v in world.reader.search_people("acme", "new@example.org", PERSON_FIELDS)] == [pid]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": 7}, "email"),
        ({}, "email"),
        ([], "body"),
        ({"email": "a@b.co", "fields": []}, "fields"),
        ({"email": "a@b.co", "fields": ["ssn"]}, "fields"),
        ({"email": "a@b.co", "fields": ["dob", "dob"]}, "fields"),
        ({"email": "a@b.co", "fields": None}, "fields"),
        ({"email": "a@b.co", "extra": 1}, "extra"),
    ],
)
def test_given_a_bad_search_body_then_a_validation_error_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_search(body)
    assert raised.value.field == field


def test_given_a_malformed_email_when_searching_then_a_validation_error_without_the_value(world: World) -> None:
    with pytest.raises(ValidationError) as raised:
        world.reader.search_people("acme", "wilhelmina@@example.org", PERSON_FIELDS)
    assert raised.value.field == "email" and "wilhelmina" not in raised.value.message
