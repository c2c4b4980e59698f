"""The reader fleet's shared key table: one KMS Decrypt per pool data key per fleet."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib.keys.fleet import FleetKeyTable, FleetSealingKeys, entry_id
from chalicelib.support.errors import ThrottledError

POOL = {"app": "pii-vault", "scope": "pool"}
TENANT = {"app": "pii-vault", "customer_id": "acme"}


class CountingKms:
    """Unwraps by table lookup and counts calls (stands in for kms:Decrypt)."""

    def __init__(self) -> None:
        self.keys: dict[bytes, bytes] = {}
        self.calls = 0

    def add(self, wrapped: bytes) -> bytes:
        self.keys[wrapped] = hashlib.sha256(wrapped).digest()
        return self.keys[wrapped]

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        self.calls += 1
        return self.keys[wrapped]


class CountingMac:
    def __init__(self, secret: bytes = b"k" * 32) -> None:
        self.secret = secret
        self.calls = 0
        self.fail = False

    def mac(self, message: bytes) -> bytes:
        self.calls += 1
        if self.fail:
            raise ThrottledError("kms is throttling requests; retry later")
        return hmac.new(self.secret, message, hashlib.sha256).digest()


class MemoryTable:
    def __init__(self) -> None:
        self.items: dict[bytes, dict[str, Any]] = {}
        self.fail = False

    def get(self, entry_id_: bytes) -> dict[str, Any] | None:
        if self.fail:
            raise ConnectionError("down")
        item = self.items.get(entry_id_)
        return dict(item) if item is not None else None

    def put(self, entry_id_: bytes, entry: dict[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("down")
        self.items[entry_id_] = dict(entry)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fleet(kms: CountingKms, table: MemoryTable, mac: CountingMac, clock: Clock, lifetime: int = 3600) -> FleetKeyTable:
    return FleetKeyTable(
        kms, table, FleetSealingKeys(mac), lifetime_seconds=lifetime, epoch_seconds=86_400, clock=clock
    )


def test_one_kms_call_per_pool_key_across_containers() -> None:
    kms, table, clock = CountingKms(), MemoryTable(), Clock()
    wrapped = b"wrapped-1"
    key = kms.add(wrapped)
    containers = [fleet(kms, table, CountingMac(), clock) for _ in range(5)]
    assert [c.unwrap(wrapped, POOL) for c in containers] == [key] * 5
    assert kms.calls == 1
    stored = table.items[entry_id(wrapped, POOL)]
    assert key not in stored["sealed"]  # sealed, not stored in the clear


def test_tenant_scoped_keys_never_enter_the_table() -> None:
    kms, table, clock = CountingKms(), MemoryTable(), Clock()
    kms.add(b"w")
    a, b = fleet(kms, table, CountingMac(), clock), fleet(kms, table, CountingMac(), clock)
    a.unwrap(b"w", TENANT)
    b.unwrap(b"w", TENANT)
    assert kms.calls == 2 and table.items == {}


def test_entries_expire_by_their_authenticated_lifetime() -> None:
    kms, table, clock = CountingKms(), MemoryTable(), Clock()
    kms.add(b"w")
    reader = fleet(kms, table, CountingMac(), clock, lifetime=60)
    reader.unwrap(b"w", POOL)
    clock.now += 59
    reader.unwrap(b"w", POOL)
    assert kms.calls == 1
    clock.now += 2
    reader.unwrap(b"w", POOL)
    assert kms.calls == 2


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.update(expires_at=e["expires_at"] + 10),  # extend the lifetime
        lambda e: e.update(epoch=e["epoch"] - 1),  # claim another epoch
        lambda e: e.update(sealed=e["sealed"][:-1] + bytes([e["sealed"][-1] ^ 1])),  # flip a tag bit
        lambda e: e.update(sealed=b"\x00" * 60),  # forged without the sealing key
        lambda e: e.pop("sealed"),  # malformed
        lambda e: e.update(epoch=10**12),  # absurd epoch: refused before any KMS call
    ],
)
def test_a_table_writer_cannot_plant_or_extend_an_entry(tamper: Any, caplog: pytest.LogCaptureFixture) -> None:
    kms, table, clock = CountingKms(), MemoryTable(), Clock()
    key = kms.add(b"w")
    mac = CountingMac()
    fleet(kms, table, mac, clock).unwrap(b"w", POOL)
    tamper(table.items[entry_id(b"w", POOL)])
    calls_before = mac.calls
    with caplog.at_level(logging.ERROR):
        assert fleet(kms, table, mac, clock).unwrap(b"w", POOL) == key  # KMS is authoritative
    assert kms.calls == 2
    assert "integrity_error" in caplog.text
    assert mac.calls - calls_before <= 1  # at most the current epoch's sealing key


def test_an_entry_moved_to_another_wrapped_key_fails() -> None:
    kms, table, clock = CountingKms(), MemoryTable(), Clock()
    kms.add(b"w1")
    k2 = kms.add(b"w2")
    reader = fleet(kms, table, CountingMac(), clock)
    reader.unwrap(b"w1", POOL)
    table.items[entry_id(b"w2", POOL)] = dict(table.items[entry_id(b"w1", POOL)])
    assert reader.unwrap(b"w2", POOL) == k2
    assert kms.calls == 2


def test_another_fleet_sealing_key_cannot_open_entries() -> None:
    kms, table, clock = CountingKms(), MemoryTable(), Clock()
    kms.add(b"w")
    fleet(kms, table, CountingMac(b"a" * 32), clock).unwrap(b"w", POOL)
    fleet(kms, table, CountingMac(b"b" * 32), clock).unwrap(b"w", POOL)
    assert kms.calls == 2


def test_sealing_key_is_derived_once_per_epoch_per_container() -> None:
    kms, table, clock, mac = CountingKms(), MemoryTable(), Clock(), CountingMac()
    reader = fleet(kms, table, mac, clock)
    for n in range(50):
        kms.add(b"w%d" % n)
        reader.unwrap(b"w%d" % n, POOL)
    assert mac.calls == 1


def test_table_or_mac_failures_fall_back_to_kms() -> None:
    kms, table, clock, mac = CountingKms(), MemoryTable(), Clock(), CountingMac()
    key = kms.add(b"w")
    table.fail = True
    assert fleet(kms, table, mac, clock).unwrap(b"w", POOL) == key
    table.fail, mac.fail = False, True
    assert fleet(kms, table, mac, clock).unwrap(b"w", POOL) == key
    assert kms.calls == 2 and table.items == {}


def test_lifetimes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FleetKeyTable(CountingKms(), MemoryTable(), FleetSealingKeys(CountingMac()), lifetime_seconds=0)
