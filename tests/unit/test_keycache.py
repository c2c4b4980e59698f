"""Data key caches: bounded in records/entries and seconds, zero wires the uncached source, tenants never share."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from chalicelib.envelope.format import FORMAT_V2, Opener, RecordRef, Sealer, WrappedKey, encryption_context
from chalicelib.keys.kms import (
    CachingDataKeys,
    CachingUnwrapper,
    FreshDataKeys,
    reader_unwrapper,
    writer_data_keys,
)
from chalicelib.keys.refs import CachingResolver
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
    fresh = kms.data_keys()
    return CachingDataKeys(fresh, max_records=max_records, max_age_seconds=seconds, clock=clock)


def reader_cache(kms: FakeKms, clock: Ticks, max_entries: int = 2, seconds: float = 60) -> CachingUnwrapper:
    return CachingUnwrapper(kms.decryptor(), max_entries=max_entries, max_age_seconds=seconds, clock=clock)


def test_given_a_writer_cache_when_records_are_sealed_then_one_key_serves_max_records_then_a_new_one(
    kms: FakeKms, clock: Ticks
) -> None:
    cache = writer_cache(kms, clock, max_records=3)
    keys = [cache.data_key(ACME) for _ in range(7)]
    assert kms.encrypt_calls == 3  # 3 + 3 + 1
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert keys[3] == keys[5] != keys[6]


def test_given_a_writer_cache_when_the_key_is_older_than_max_age_then_a_new_key_is_wrapped(
    kms: FakeKms, clock: Ticks
) -> None:
    cache = writer_cache(kms, clock, max_records=1000, seconds=60)
    first = cache.data_key(ACME)
    clock.now += 59.9
    assert cache.data_key(ACME) == first
    clock.now += 0.1
    assert cache.data_key(ACME) != first
    assert kms.encrypt_calls == 2


@pytest.mark.parametrize("max_records, seconds", [(0, 60), (100, 0), (0, 0)])
def test_given_a_zero_bound_when_sealing_then_the_writer_cache_is_off_and_every_record_gets_its_own_key(
    kms: FakeKms, max_records: int, seconds: int
) -> None:
    source = writer_data_keys(kms.encryptor(), max_records=max_records, max_age_seconds=seconds)
    keys = {source.data_key(ACME)[0] for _ in range(4)}
    assert isinstance(source, FreshDataKeys)
    assert len(keys) == 4 and kms.encrypt_calls == 4


def test_given_positive_bounds_then_the_writer_and_reader_get_the_caching_wrappers(kms: FakeKms) -> None:
    assert isinstance(writer_data_keys(kms.encryptor(), max_records=1, max_age_seconds=1), CachingDataKeys)
    assert isinstance(reader_unwrapper(kms.decryptor(), max_entries=1, max_age_seconds=1), CachingUnwrapper)


def test_given_two_tenants_then_the_writer_never_uses_one_tenants_key_for_the_other(kms: FakeKms, clock: Ticks) -> None:
    cache = writer_cache(kms, clock, max_records=100)
    acme = [cache.data_key(ACME) for _ in range(3)]
    globex = [cache.data_key(GLOBEX) for _ in range(3)]
    assert len(set(acme)) == 1 and len(set(globex)) == 1
    assert acme[0][0] != globex[0][0] and kms.encrypt_calls == 2
    # The wrapped key names its tenant: it only unwraps under that tenant's context.
    assert kms.unwrap(globex[0][1].blob, GLOBEX) == globex[0][0]
    with pytest.raises(IntegrityError):
        kms.unwrap(globex[0][1].blob, ACME)


def test_given_a_writer_cache_when_wrapping_fails_then_nothing_is_cached_and_the_error_surfaces(clock: Ticks) -> None:
    class Failing:
        calls = 0

        def wrap(self, data_key: bytes, context: Mapping[str, str]) -> WrappedKey:
            self.calls += 1
            raise IntegrityError("refused")

    failing = Failing()
    cache = CachingDataKeys(FreshDataKeys(failing), max_records=10, max_age_seconds=60, clock=clock)
    for _ in range(2):
        with pytest.raises(IntegrityError):
            cache.data_key(ACME)
    assert failing.calls == 2


def test_given_a_writer_cache_then_the_writer_only_ever_encrypts(kms: FakeKms, clock: Ticks) -> None:
    cache = writer_cache(kms, clock, max_records=2)
    for _ in range(5):
        cache.data_key(ACME)
    assert (kms.encrypt_calls, kms.decrypt_calls) == (3, 0)


def test_given_many_tenants_then_the_writer_cache_holds_at_most_max_contexts(kms: FakeKms, clock: Ticks) -> None:
    cache = CachingDataKeys(kms.data_keys(), max_records=10, max_age_seconds=60, clock=clock, max_contexts=2)
    for tenant in ("a", "b", "c", "a"):
        cache.data_key(encryption_context("pii-vault", tenant))
    assert kms.encrypt_calls == 4  # "a" was evicted by "c"


def test_given_a_reader_cache_when_the_same_wrapped_key_is_read_again_then_one_decrypt(
    kms: FakeKms, clock: Ticks
) -> None:
    cache = reader_cache(kms, clock)
    data_key = b"k" * 32
    wrapped = kms.wrap(data_key, ACME).blob
    assert [cache.unwrap(wrapped, ACME) for _ in range(5)] == [data_key] * 5
    assert kms.decrypt_calls == 1


def test_given_a_reader_cache_when_an_entry_is_older_than_max_age_then_kms_is_asked_again(
    kms: FakeKms, clock: Ticks
) -> None:
    cache = reader_cache(kms, clock, seconds=30)
    wrapped = kms.wrap(b"k" * 32, ACME).blob
    cache.unwrap(wrapped, ACME)
    clock.now += 29
    cache.unwrap(wrapped, ACME)
    clock.now += 1
    cache.unwrap(wrapped, ACME)
    assert kms.decrypt_calls == 2


def test_given_a_reader_cache_then_it_holds_at_most_max_entries_least_recently_used_first_out(
    kms: FakeKms, clock: Ticks
) -> None:
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
def test_given_a_zero_bound_then_the_reader_cache_is_off(kms: FakeKms, max_entries: int, seconds: int) -> None:
    decryptor = kms.decryptor()
    unwrapper = reader_unwrapper(decryptor, max_entries=max_entries, max_age_seconds=seconds)
    wrapped = kms.wrap(b"k" * 32, ACME).blob
    for _ in range(3):
        unwrapper.unwrap(wrapped, ACME)
    assert unwrapper is decryptor and kms.decrypt_calls == 3


def test_given_a_key_cached_for_one_tenant_when_its_bytes_are_read_as_another_tenant_then_kms_refuses(
    kms: FakeKms, clock: Ticks
) -> None:
    cache = reader_cache(kms, clock)
    wrapped = kms.wrap(b"k" * 32, ACME).blob
    cache.unwrap(wrapped, ACME)
    with pytest.raises(IntegrityError):
        cache.unwrap(wrapped, GLOBEX)  # not served from A's entry: KMS checks the context
    assert kms.decrypt_calls == 2


def test_given_both_caches_when_many_records_round_trip_then_each_field_stays_bound_to_its_record(
    kms: FakeKms, clock: Ticks
) -> None:
    """Format v3: the writer's cached key, filed once by reference; the reader's resolver cache."""
    sealer = Sealer(writer_cache(kms, clock, max_records=100), "pii-vault")
    resolver = CachingResolver(kms.resolver(), max_entries=10, max_age_seconds=60, clock=clock)
    opener = Opener(kms.decryptor(), "pii-vault", resolver=resolver)
    refs = [RecordRef("acme", "person", f"{n:032x}") for n in range(20)]
    sealed = [sealer.seal(ref, {"name": f"name-{n}".encode(), "email": b"e"}) for n, ref in enumerate(refs)]
    assert kms.encrypt_calls == 1 and len(kms.keys.entries) == 1
    for n, (ref, record) in enumerate(zip(refs, sealed, strict=True)):
        assert opener.open(ref, record.blobs, {}, ("name",), refs=record.refs())["name"] == f"name-{n}".encode()
    assert kms.decrypt_calls == 1 and kms.keys.gets == 1
    # Same data key, but record 0's field moved into record 1 (or to another field) fails the AAD.
    with pytest.raises(IntegrityError):
        opener.open(refs[1], {"name": sealed[0].blobs["name"]}, {}, ("name",), refs=sealed[1].refs())
    with pytest.raises(IntegrityError):
        opener.open(refs[0], {"email": sealed[0].blobs["name"]}, {}, ("email",), refs=sealed[0].refs())


def test_given_v2_records_and_the_unwrapper_cache_then_each_field_stays_bound_to_its_record(
    kms: FakeKms, clock: Ticks
) -> None:
    """Records written before format v3 carry their wrapped key inline: the unwrapper cache serves them."""
    sealer = Sealer(writer_cache(kms, clock, max_records=100), "pii-vault")
    opener = Opener(reader_cache(kms, clock, max_entries=10), "pii-vault")
    refs = [RecordRef("acme", "person", f"{n:032x}") for n in range(20)]
    sealed = [sealer.seal(ref, {"name": f"n{n}".encode()}, version=FORMAT_V2) for n, ref in enumerate(refs)]
    for n, (ref, record) in enumerate(zip(refs, sealed, strict=True)):
        assert opener.open(ref, record.blobs, record.slots(), ("name",))["name"] == f"n{n}".encode()
    assert kms.decrypt_calls == 1
    with pytest.raises(IntegrityError):
        opener.open(refs[1], {"name": sealed[0].blobs["name"]}, sealed[1].slots(), ("name",))


def test_given_a_resolver_cache_then_entries_live_no_longer_than_their_source_says(kms: FakeKms, clock: Ticks) -> None:
    """A fleet entry's expiry bounds the container's copy (``resolve_until``): never kept past it
    (and kept that long: the entry, not the cache's own age, says how long the key may live)."""

    class Timed:
        def __init__(self) -> None:
            self.calls = 0

        def resolve(self, ref: bytes, context: Mapping[str, str]) -> bytes:
            raise AssertionError("the cache asks resolve_until when the source has it")

        def resolve_until(self, ref: bytes, context: Mapping[str, str]) -> tuple[bytes, float]:
            self.calls += 1
            return b"k" * 32, 10.0

    source = Timed()
    cache = CachingResolver(source, max_entries=10, max_age_seconds=300, clock=clock)
    cache.resolve(b"r" * 16, ACME)
    clock.now += 9
    cache.resolve(b"r" * 16, ACME)
    assert source.calls == 1
    clock.now += 2  # past the source's 10 s, well within the cache's own 300 s
    cache.resolve(b"r" * 16, ACME)
    assert source.calls == 2
    short = CachingResolver(source, max_entries=10, max_age_seconds=5, clock=clock)
    short.resolve(b"r" * 16, ACME)
    clock.now += 9  # past the cache's own 5 s, within the entry's 10 s
    short.resolve(b"r" * 16, ACME)
    assert source.calls == 3


def test_given_a_key_table_entry_that_is_not_the_referenced_key_then_integrity_error(kms: FakeKms) -> None:
    """A swapped key-table entry (a leaked writer filing another wrapped key under a reference)
    unwraps to a key the reference does not commit to: refused, never used."""
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(RecordRef("acme", "person", "a" * 32), {"name": b"x"})
    other = Sealer(kms.data_keys(), "pii-vault").seal(RecordRef("acme", "person", "b" * 32), {"name": b"y"})
    context = encryption_context("pii-vault", "acme", 2)
    key = next(k for k in kms.keys.entries if k[1] == sealed.wrapped_key.ref)
    kms.keys.entries[key] = other.wrapped_key
    with pytest.raises(IntegrityError, match="not the data key"):
        kms.resolver().resolve(sealed.wrapped_key.ref, context)
    with pytest.raises(IntegrityError, match="does not hold"):
        kms.resolver().resolve(b"z" * 16, context)
