"""The reader fleet's pool keys by day: one Query per day per container, one KMS call per key per fleet."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import pytest

from chalicelib.envelope.key_ref import key_ref
from chalicelib.keys.fleet import FleetSealingKeys
from chalicelib.keys.fleet_buckets import FleetBuckets, bucket_of
from chalicelib.keys.refs import CachingResolver
from chalicelib.support.errors import IntegrityError
from tests.unit.test_fleet import Clock, CountingMac

POOL = {"app": "pii-vault", "scope": "pool"}
TENANT = {"app": "pii-vault", "customer_id": "acme"}
DAY = 86_400


class KeySource:
    """The key table + KMS behind the fleet: resolves references it knows, counts the calls."""

    def __init__(self) -> None:
        self.keys: dict[bytes, bytes] = {}
        self.calls = 0

    def make(self, hour: int) -> bytes:
        key = os.urandom(32)
        ref = key_ref(key, hour)
        self.keys[ref] = key
        return ref

    def resolve(self, ref: bytes, context: Mapping[str, str]) -> bytes:
        self.calls += 1
        if ref not in self.keys:
            raise IntegrityError("a record names a data key the key table does not hold")
        return self.keys[ref]


Entry = tuple[int, int, bytes]  # (epoch, expires_at, sealed), as ``BucketTable`` stores it


class BucketMemory:
    def __init__(self) -> None:
        self.items: dict[tuple[str, bytes], Entry] = {}
        self.queries = self.gets = self.puts = 0

    def query(self, bucket: str) -> dict[bytes, Entry]:
        self.queries += 1
        return {ref: entry for (day, ref), entry in self.items.items() if day == bucket}

    def get(self, bucket: str, ref: bytes) -> Entry | None:
        self.gets += 1
        return self.items.get((bucket, ref))

    def put(self, bucket: str, ref: bytes, entry: Entry) -> None:
        self.puts += 1
        self.items[(bucket, ref)] = entry


@pytest.fixture
def world() -> tuple[KeySource, BucketMemory, CountingMac, Clock]:
    return KeySource(), BucketMemory(), CountingMac(), Clock(20_000 * DAY + 20 * 3600)


def container(world: tuple[KeySource, BucketMemory, CountingMac, Clock], lifetime: int = DAY) -> FleetBuckets:
    source, table, mac, clock = world
    return FleetBuckets(source, table, FleetSealingKeys(mac), lifetime_seconds=lifetime, clock=clock)


def test_given_a_day_of_keys_filed_by_one_container_then_another_gets_them_all_with_one_query(
    world: tuple[KeySource, BucketMemory, CountingMac, Clock],
) -> None:
    source, table, _mac, clock = world
    hour = int(clock.now // 3600)
    refs = [source.make(hour - n % 20) for n in range(200)]  # 200 keys of one day
    first = container(world)
    for ref in refs:
        first.resolve(ref, POOL)
    assert source.calls == 200 and table.puts == 200  # nobody had filed them: once each, for everyone
    second = container(world)
    calls, queries, gets = source.calls, table.queries, table.gets
    for ref in refs:
        assert second.resolve(ref, POOL) == source.keys[ref]
    assert (source.calls, table.queries - queries, table.gets - gets) == (calls, 1, 0)
    assert second.entries() == 200


def test_given_keys_of_many_days_then_one_query_per_day_and_the_day_is_the_references(
    world: tuple[KeySource, BucketMemory, CountingMac, Clock],
) -> None:
    source, table, _mac, clock = world
    hour = int(clock.now // 3600)
    refs = [source.make(hour - 24 * day) for day in range(30) for _ in range(5)]
    container(world).resolve(refs[0], POOL)
    for ref in refs:
        container(world).resolve(ref, POOL)  # another container each time: only the table is shared
    reader = container(world)
    queries = table.queries
    for ref in refs:
        reader.resolve(ref, POOL)
    assert table.queries - queries == 30
    assert {bucket_of(ref) for ref in refs} == {f"d{(hour - 24 * day) // 24}" for day in range(30)}


def test_given_a_key_filed_after_this_containers_copy_then_it_is_fetched_alone(
    world: tuple[KeySource, BucketMemory, CountingMac, Clock],
) -> None:
    source, table, _mac, clock = world
    hour = int(clock.now // 3600)
    early, late = source.make(hour), source.make(hour)
    reader = container(world)
    reader.resolve(early, POOL)
    container(world).resolve(late, POOL)  # another container files it
    calls, gets, queries = source.calls, table.gets, table.queries
    reader.resolve(late, POOL)
    assert (source.calls, table.gets - gets, table.queries - queries) == (calls, 1, 0)


def test_given_an_entry_then_a_container_keeps_its_key_no_longer_than_the_entry(
    world: tuple[KeySource, BucketMemory, CountingMac, Clock],
) -> None:
    source, _table, _mac, clock = world
    ref = source.make(int(clock.now // 3600))
    reader = CachingResolver(container(world, lifetime=3600), max_entries=100, max_age_seconds=10**6, clock=clock)
    reader.resolve(ref, POOL)
    clock.now += 3599
    calls = source.calls
    reader.resolve(ref, POOL)
    assert source.calls == calls  # still within the entry: no fetch, no KMS
    clock.now += 2  # the entry has expired: KMS again (the revocation delay is the entry's lifetime)
    reader.resolve(ref, POOL)
    assert source.calls == calls + 1


def test_given_a_poisoned_entry_then_it_is_dropped_and_kms_asked(
    world: tuple[KeySource, BucketMemory, CountingMac, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    """A reader credential can write this table: an entry holding another key under a real
    reference (sealed with a real epoch key) is refused by the reference's commitment."""
    source, table, mac, clock = world
    hour = int(clock.now // 3600)
    ref, other = source.make(hour), source.make(hour)
    lying = KeySource()
    lying.keys[ref] = source.keys[other]  # the attacker seals another key, correctly, under ref's entry
    FleetBuckets(lying, table, FleetSealingKeys(mac), lifetime_seconds=DAY, clock=clock).resolve(ref, POOL)
    assert table.puts == 1
    calls = source.calls
    with caplog.at_level(logging.ERROR, logger="chalicelib.keys.fleet_buckets"):
        assert container(world).resolve(ref, POOL) == source.keys[ref]
    assert source.calls == calls + 1
    assert "integrity_error" in caplog.text


def test_given_a_tenant_scoped_key_then_the_fleet_is_never_used(
    world: tuple[KeySource, BucketMemory, CountingMac, Clock],
) -> None:
    source, table, _mac, clock = world
    ref = source.make(int(clock.now // 3600))
    reader = container(world)
    for _ in range(3):
        reader.resolve(ref, TENANT)
    assert source.calls == 3 and (table.queries, table.gets, table.puts) == (0, 0, 0)


def test_given_the_table_down_then_reads_go_to_the_key_table_and_kms(
    world: tuple[KeySource, BucketMemory, CountingMac, Clock],
) -> None:
    source, table, _mac, clock = world
    ref = source.make(int(clock.now // 3600))

    def down(*_args: object) -> None:
        raise ConnectionError("down")

    table.query = table.get = table.put = down  # type: ignore[method-assign,assignment]  # every call fails
    assert container(world).resolve(ref, POOL) == source.keys[ref]
    assert source.calls == 1
