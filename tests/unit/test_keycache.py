"""Data key caches: bounded in records/entries and seconds, zero wires the uncached source, tenants never share."""

from __future__ import annotations

import pytest

from chalicelib.envelope.format import Opener, RecordRef, Sealer, encryption_context
from chalicelib.keys.kms import (
    CachingDataKeys,
    CachingUnwrapper,
    FreshDataKeys,
    reader_unwrapper,
    writer_data_keys,
)
from chalicelib.support.errors import IntegrityError
from tests.fakes import FakeKms

ACME = encryption_context("pii-vault", "acme")
GLOBEX = encryption_context("pii-vault", "globex")


class Ticks:
    """Injectable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kms() -> FakeKms:
    return FakeKms()


@pytest.fixture
def clock() -> Ticks:
    return Ticks()


def writer_cache(kms: FakeKms, clock: Ticks, max_records: int = 3, seconds: float = 60) -> CachingDataKeys:
    fresh = FreshDataKeys(kms.encryptor())
    return CachingDataKeys(fresh, max_records=max_records, max_age_seconds=seconds, clock=clock)


def reader_cache(kms: FakeKms, clock: Ticks, max_entries: int = 2, seconds: float = 60) -> CachingUnwrapper:
    return CachingUnwrapper(kms.decryptor(), max_entries=max_entries, max_age_seconds=seconds, clock=clock)


def test_given_a_writer_cache_when_records_are_sealed_then_one_key_serves_max_records_then_a_new_one(
    kms, clock
) -> None:
    cache = writer_cache(kms, clock, max_records=3)
    keys = [cache.data_key(ACME) for _ in range(7)]
    assert kms.encrypt_calls == 3  # 3 + 3 + 1
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert keys[3] == keys[5] != keys[6]


def test_given_a_writer_cache_when_the_key_is_older_than_max_age_then_a_new_key_is_wrapped(kms, clock) -> None:
    cache = writer_cache(kms, clock, max_records=1000, seconds=60)
    first = cache.data_key(ACME)
    clock.now += 59.9
    assert cache.data_key(ACME) == first
    clock.now += 0.1
    assert cache.data_key(ACME) != first
    assert kms.encrypt_calls == 2


@pytest.mark.parametrize("max_records, seconds", [(0, 60), (100, 0), (0, 0)])
def test_given_a_zero_bound_when_sealing_then_the_writer_cache_is_off_and_every_record_gets_its_own_key(
    kms, max_records, seconds
) -> None:
    source = writer_data_keys(kms.encryptor(), max_records=max_records, max_age_seconds=seconds)
    keys = {source.data_key(ACME)[0] for _ in range(4)}
    assert isinstance(source, FreshDataKeys)
    assert len(keys) == 4 and kms.encrypt_calls == 4


def test_given_positive_bounds_then_the_writer_and_reader_get_the_caching_wrappers(kms) -> None:
    assert isinstance(writer_data_keys(kms.encryptor(), max_records=1, max_age_seconds=1), CachingDataKeys)
    assert isinstance(reader_unwrapper(kms.decryptor(), max_entries=1, max_age_seconds=1), CachingUnwrapper)


def test_given_two_tenants_then_the_writer_never_uses_one_tenants_key_for_the_other(kms, clock) -> None:
    cache = writer_cache(kms, clock, max_records=100)
    acme = [cache.data_key(ACME) for _ in range(3)]
    globex = [cache.data_key(GLOBEX) for _ in range(3)]
    assert len(set(acme)) == 1 and len(set(globex)) == 1
    assert acme[0][0] != globex[0][0] and kms.encrypt_calls == 2
    # The wrapped key names its tenant: it only unwraps under that tenant's context.
    assert kms.unwrap(globex[0][1].blob, GLOBEX) == globex[0][0]
    with pytest.raises(IntegrityError):
        kms.unwrap(globex[0][1].blob, ACME)


def test_given_a_writer_cache_when_wrapping_fails_then_nothing_is_cached_and_the_error_surfaces(clock) -> None:
    class Failing:
        calls = 0

        def wrap(self, data_key, context):
            self.calls += 1
            raise IntegrityError("refused")

    failing = Failing()
    cache = CachingDataKeys(FreshDataKeys(failing), max_records=10, max_age_seconds=60, clock=clock)
    for _ in range(2):
        with pytest.raises(IntegrityError):
            cache.data_key(ACME)
    assert failing.calls == 2


def test_given_a_writer_cache_then_the_writer_only_ever_encrypts(kms, clock) -> None:
    cache = writer_cache(kms, clock, max_records=2)
    for _ in range(5):
        cache.data_key(ACME)
    assert (kms.encrypt_calls, kms.decrypt_calls) == (3, 0)


def test_given_many_tenants_then_the_writer_cache_holds_at_most_max_contexts(kms, clock) -> None:
    cache = CachingDataKeys(
        FreshDataKeys(kms.encryptor()), max_records=10, max_age_seconds=60, clock=clock, max_contexts=2
    )
    for tenant in ("a", "b", "c", "a"):
        cache.data_key(encryption_context("pii-vault", tenant))
    assert kms.encrypt_calls == 4  # "a" was evicted by "c"


def test_given_a_reader_cache_when_the_same_wrapped_key_is_read_again_then_one_decrypt(kms, clock) -> None:
    cache = reader_cache(kms, clock)
    data_key = b"k" * 32
    wrapped = kms.wrap(data_key, ACME).blob
    assert [cache.unwrap(wrapped, ACME) for _ in range(5)] == [data_key] * 5
    assert kms.decrypt_calls == 1


def test_given_a_reader_cache_when_an_entry_is_older_than_max_age_then_kms_is_asked_again(kms, clock) -> None:
    cache = reader_cache(kms, clock, seconds=30)
    wrapped = kms.wrap(b"k" * 32, ACME).blob
    cache.unwrap(wrapped, ACME)
    clock.now += 29
    cache.unwrap(wrapped, ACME)
    clock.now += 1
    cache.unwrap(wrapped, ACME)
    assert kms.decrypt_calls == 2


def test_given_a_reader_cache_then_it_holds_at_most_max_entries_least_recently_used_first_out(kms, clock) -> None:
    cache = reader_cache(kms, clock, max_entries=2)
    a, b, c = (kms.wrap(bytes([n]) * 32, ACME).blob for n in range(3))
    cache.unwrap(a, ACME)
    cache.unwrap(b, ACME)
    cache.unwrap(a, ACME)  # a is now the most recent
    cache.unwrap(c, ACME)  # evicts b
    assert len(cache) == 2 and kms.decrypt_calls == 3
    cache.unwrap(a, ACME)
    assert kms.decrypt_calls == 3
    cache.unwrap(b, ACME)
    assert kms.decrypt_calls == 4


@pytest.mark.parametrize("max_entries, seconds", [(0, 60), (10, 0)])
def test_given_a_zero_bound_then_the_reader_cache_is_off(kms, max_entries, seconds) -> None:
    decryptor = kms.decryptor()
    unwrapper = reader_unwrapper(decryptor, max_entries=max_entries, max_age_seconds=seconds)
    wrapped = kms.wrap(b"k" * 32, ACME).blob
    for _ in range(3):
        unwrapper.unwrap(wrapped, ACME)
    assert unwrapper is decryptor and kms.decrypt_calls == 3


def test_given_a_key_cached_for_one_tenant_when_its_bytes_are_read_as_another_tenant_then_kms_refuses(
    kms, clock
) -> None:
    cache = reader_cache(kms, clock)
    wrapped = kms.wrap(b"k" * 32, ACME).blob
    cache.unwrap(wrapped, ACME)
    with pytest.raises(IntegrityError):
        cache.unwrap(wrapped, GLOBEX)  # not served from A's entry: KMS checks the context
    assert kms.decrypt_calls == 2


def test_given_both_caches_when_many_records_round_trip_then_each_field_stays_bound_to_its_record(kms, clock) -> None:
    sealer = Sealer(writer_cache(kms, clock, max_records=100), "pii-vault")
    opener = Opener(reader_cache(kms, clock, max_entries=10), "pii-vault")
    refs = [RecordRef("acme", "person", f"{n:032x}") for n in range(20)]
    sealed = [sealer.seal(ref, {"name": f"name-{n}".encode(), "email": b"e"}) for n, ref in enumerate(refs)]
    assert kms.encrypt_calls == 1
    for n, (ref, record) in enumerate(zip(refs, sealed, strict=True)):
        assert opener.open(ref, record.blobs, record.slots(), ("name",))["name"] == f"name-{n}".encode()
    assert kms.decrypt_calls == 1
    # Same data key, but record 0's field moved into record 1 (or to another field) fails the AAD.
    with pytest.raises(IntegrityError):
        opener.open(refs[1], {"name": sealed[0].blobs["name"]}, sealed[1].slots(), ("name",))
    with pytest.raises(IntegrityError):
        opener.open(refs[0], {"email": sealed[0].blobs["name"]}, sealed[0].slots(), ("email",))
