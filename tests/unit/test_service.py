"""Use cases over the in-memory repository and fake KMS: behaviour and KMS call counts."""

from __future__ import annotations

import logging

import pytest

from chalicelib.envelope.format import Opener, Sealer
from chalicelib.service import ReaderService, WriterService
from chalicelib.store.records import SecretHead, SecretVersion, SecretVersionConflict
from chalicelib.support.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from tests.fakes import FakeKms, FixedClock, InMemoryStore
from tests.plaintext_guard import register
from tools.sample import person, plaintexts

PERSON = person()
register(PERSON, "sk_live_abcdef")  # the no-plaintext guard looks for these everywhere


@pytest.fixture
def kms() -> FakeKms:
    return FakeKms()


@pytest.fixture
def repo() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def writer(repo: InMemoryStore, kms: FakeKms) -> WriterService:
    return WriterService(repo, Sealer(kms.data_keys(), "pii-vault"), clock=FixedClock())


@pytest.fixture
def reader(repo: InMemoryStore, kms: FakeKms) -> ReaderService:
    return ReaderService(repo, Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver()))


def test_given_a_person_when_created_and_read_then_same_data_and_one_kms_call_each_way(
    writer: WriterService, reader: ReaderService, kms: FakeKms
) -> None:
    created = writer.create_person("acme", PERSON)
    assert (created.version, kms.encrypt_calls) == (1, 1)
    view = reader.get_person("acme", created.id)
    assert view.data == PERSON
    assert kms.decrypt_calls == 1


def test_given_a_created_person_then_the_repository_holds_no_plaintext(
    writer: WriterService, repo: InMemoryStore
) -> None:
    created = writer.create_person("acme", PERSON)
    stored = repr(repo.people[("acme", created.id)])
    for value in plaintexts(PERSON):
        assert value not in stored


def test_given_a_person_of_one_tenant_when_read_as_another_then_not_found(
    writer: WriterService, reader: ReaderService
) -> None:
    created = writer.create_person("acme", PERSON)
    with pytest.raises(NotFoundError):
        reader.get_person("globex", created.id)


def test_given_a_patch_when_read_then_patched_and_untouched_fields_both_decrypt(
    writer: WriterService, reader: ReaderService, kms: FakeKms
) -> None:
    created = writer.create_person("acme", PERSON)
    patched = writer.patch_person("acme", created.id, {"email": "amazing.grace@navy.example"}, None)
    assert patched.version == 2 and kms.encrypt_calls == 2
    view = reader.get_person("acme", created.id)
    assert view.data == {**PERSON, "email": "amazing.grace@navy.example"}
    assert kms.decrypt_calls == 2  # the record key and the patch key


def test_given_a_patched_person_when_only_the_patched_field_is_read_then_its_key_and_the_creation_key(
    writer: WriterService, reader: ReaderService, kms: FakeKms
) -> None:
    created = writer.create_person("acme", PERSON)
    writer.patch_person("acme", created.id, {"email": "x@navy.example"}, None)
    assert reader.get_person("acme", created.id, ("email",)).data == {"email": "x@navy.example"}
    # the patch's key (email + the sealed version) and the create's (the sealed creation time)
    assert kms.decrypt_calls == 2


def test_given_concurrent_patches_of_different_fields_then_both_survive(
    writer: WriterService, reader: ReaderService
) -> None:
    created = writer.create_person("acme", PERSON)
    writer.patch_person("acme", created.id, {"email": "new@navy.example"}, None)
    writer.patch_person("acme", created.id, {"name": "Amazing Grace"}, None)
    data = reader.get_person("acme", created.id).data
    assert (data["email"], data["name"]) == ("new@navy.example", "Amazing Grace")


def test_given_repeated_patches_then_the_slot_map_stays_bounded(writer: WriterService, repo: InMemoryStore) -> None:
    created = writer.create_person("acme", PERSON)
    for round_ in range(20):
        writer.patch_person("acme", created.id, {"email": f"e{round_}@navy.example", "name": f"N{round_}"}, None)
    assert len(repo.people[("acme", created.id)].refs) <= 7  # the create's slot and one per field


def test_given_a_replace_then_old_patch_slots_are_dropped(
    writer: WriterService, reader: ReaderService, repo: InMemoryStore
) -> None:
    created = writer.create_person("acme", PERSON)
    writer.patch_person("acme", created.id, {"email": "x@navy.example"}, None)
    writer.replace_person("acme", created.id, {**PERSON, "name": "G."}, None)
    assert set(repo.people[("acme", created.id)].refs) == {"0", "c"}  # creation metadata keeps its slot
    assert reader.get_person("acme", created.id).data["name"] == "G."


def test_given_a_stale_if_match_when_replacing_then_412_and_nothing_changes(
    writer: WriterService, reader: ReaderService
) -> None:
    created = writer.create_person("acme", PERSON)
    writer.patch_person("acme", created.id, {"name": "Amazing"}, 1)
    with pytest.raises(PreconditionFailedError):
        writer.replace_person("acme", created.id, {**PERSON, "name": "Lost"}, 1)
    assert reader.get_person("acme", created.id).data["name"] == "Amazing"


def test_given_a_missing_person_when_patched_or_deleted_then_not_found(writer: WriterService) -> None:
    with pytest.raises(NotFoundError):
        writer.patch_person("acme", "f" * 32, {"name": "X"}, None)
    with pytest.raises(NotFoundError):
        writer.delete_person("acme", "f" * 32, None)


def test_given_an_invalid_body_when_creating_then_nothing_is_stored_and_no_kms_call(
    writer: WriterService, repo: InMemoryStore, kms: FakeKms
) -> None:
    with pytest.raises(ValidationError):
        writer.create_person("acme", {**PERSON, "email": "not-an-email"})
    assert repo.people == {} and kms.encrypt_calls == 0


def test_given_a_deleted_person_when_read_then_not_found(writer: WriterService, reader: ReaderService) -> None:
    created = writer.create_person("acme", PERSON)
    writer.delete_person("acme", created.id, 1)
    with pytest.raises(NotFoundError):
        reader.get_person("acme", created.id)


def test_given_fields_swapped_between_people_when_read_then_integrity_error(
    writer: WriterService, reader: ReaderService, repo: InMemoryStore
) -> None:
    first = writer.create_person("acme", PERSON)
    second = writer.create_person("acme", {**PERSON, "email": "other@navy.example"})
    a, b = repo.people[("acme", first.id)], repo.people[("acme", second.id)]
    a.fields["email"], a.refs = b.fields["email"], b.refs
    with pytest.raises(IntegrityError):
        reader.get_person("acme", first.id, ("email",))


def test_given_many_people_when_listed_in_pages_then_every_person_once(
    writer: WriterService, reader: ReaderService
) -> None:
    ids = {writer.create_person("acme", PERSON).id for _ in range(7)}
    writer.create_person("globex", PERSON)
    seen, token = [], None
    while True:
        page = reader.list_people("acme", 3, token, ("name",))
        seen += [view.id for view in page.items]
        assert all(view.data == {"name": PERSON["name"]} for view in page.items)
        token = page.next_token
        if token is None:
            break
    assert sorted(seen) == sorted(ids)


def test_given_a_tenant_of_exactly_two_pages_then_the_second_carries_no_next(
    writer: WriterService, reader: ReaderService
) -> None:
    """Issue 24: no trailing empty page ([2, 2, 0]) when the tenant's size is a multiple of the limit."""
    for _ in range(4):
        writer.create_person("acme", PERSON)
    first = reader.list_people("acme", 2, None, ("name",))
    second = reader.list_people("acme", 2, first.next_token, ("name",))
    assert (len(first.items), len(second.items), second.next_token) == (2, 2, None)


def test_given_secret_versions_when_read_then_latest_and_each_version_decrypt(
    writer: WriterService, reader: ReaderService, kms: FakeKms
) -> None:
    assert writer.put_secret("acme", "stripe", {"value": "sk_one"}).version == 1
    assert writer.put_secret("acme", "stripe", {"value": "sk_two"}).version == 2
    assert reader.get_secret("acme", "stripe").value == "sk_two"
    assert reader.get_secret("acme", "stripe", 1).value == "sk_one"
    assert [v.version for v in reader.secret_versions("acme", "stripe")] == [1, 2]
    assert kms.encrypt_calls == 2 and kms.decrypt_calls == 2


def test_given_a_secret_version_replayed_as_latest_when_read_then_integrity_error(
    writer: WriterService, reader: ReaderService, repo: InMemoryStore
) -> None:
    writer.put_secret("acme", "stripe", {"value": "sk_old"})
    writer.put_secret("acme", "stripe", {"value": "sk_new"})
    old, new = repo.secrets[("acme", "stripe", 1)], repo.secrets[("acme", "stripe", 2)]
    new.value, new.slots = old.value, old.slots
    with pytest.raises(IntegrityError):
        reader.get_secret("acme", "stripe")


def test_given_a_deleted_secret_then_no_version_remains(writer: WriterService, reader: ReaderService) -> None:
    writer.put_secret("acme", "stripe", {"value": "sk_one"})
    writer.put_secret("acme", "stripe", {"value": "sk_two"})
    writer.delete_secret("acme", "stripe")
    with pytest.raises(NotFoundError):
        reader.get_secret("acme", "stripe")
    with pytest.raises(NotFoundError):
        reader.secret_versions("acme", "stripe")
    with pytest.raises(NotFoundError):
        writer.delete_secret("acme", "stripe")


def test_given_any_operation_then_no_value_reaches_the_log(
    writer: WriterService, reader: ReaderService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = writer.create_person("acme", PERSON)
    writer.patch_person("acme", created.id, {"email": "z@navy.example"}, None)
    reader.get_person("acme", created.id)
    writer.put_secret("acme", "stripe", {"value": "sk_live_abcdef"})
    reader.get_secret("acme", "stripe")
    assert caplog.records, "the service should log audit events"
    for value in (*plaintexts(PERSON), "sk_live_abcdef"):
        assert value not in caplog.text


def test_given_a_multi_get_then_one_decrypt_per_distinct_key_and_missing_ids_are_reported(
    writer: WriterService, reader: ReaderService, kms: FakeKms
) -> None:
    ids = [writer.create_person("acme", PERSON).id for _ in range(3)]
    absent = "b" * 32
    batch = reader.get_people("acme", [ids[1], absent, ids[0]], ("name",))
    assert [view.id for view in batch.items] == [ids[1], ids[0]]
    assert [view.data for view in batch.items] == [{"name": PERSON["name"]}] * 2
    assert batch.missing == [absent]
    assert kms.decrypt_calls == 2


class _RacedStore(InMemoryStore):
    """Loses the first ``races`` secret-version attempts to a writer that got ahead by two."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races
        self.offers: list[tuple[int, int]] = []  # (version offered, latest it assumed)

    def put_secret_version(self, secret: SecretVersion, expected: SecretHead, new_head: SecretHead) -> None:
        self.offers.append((secret.version, expected.latest))
        ahead = SecretHead(expected.latest + 2, new_head.incarnation, new_head.legacy_until)
        if len(self.offers) <= self.races:
            raise SecretVersionConflict(ahead)
        self.secret_heads[(secret.customer_id, secret.secret_id)] = expected
        super().put_secret_version(secret, expected, new_head)


def test_given_lost_races_when_putting_a_secret_then_the_writer_builds_on_the_number_handed_back(kms: FakeKms) -> None:
    store = _RacedStore(races=2)
    sleeps: list[float] = []
    writer = WriterService(store, Sealer(kms.data_keys(), "pii-vault"), sleep=sleeps.append)
    reader = ReaderService(store, Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver()))
    assert writer.put_secret("acme", "hot", {"value": "sk_live_abcdef"}).version == 5
    assert store.offers == [(1, 0), (3, 2), (5, 4)]
    assert len(sleeps) == 2 and kms.encrypt_calls == 1  # each retry re-seals locally
    assert reader.get_secret("acme", "hot", 5).value == "sk_live_abcdef"


def test_given_a_secret_that_never_stops_racing_then_a_conflict_after_bounded_attempts(kms: FakeKms) -> None:
    store = _RacedStore(races=10**6)
    sleeps: list[float] = []
    writer = WriterService(store, Sealer(kms.data_keys(), "pii-vault"), sleep=sleeps.append)
    with pytest.raises(ConflictError):
        writer.put_secret("acme", "hot", {"value": "sk_live_abcdef"})
    assert len(store.offers) == len(sleeps) + 1 == 16
    assert store.secrets == {} and kms.encrypt_calls == 1
