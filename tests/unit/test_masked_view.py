"""The masked view in units: the projections, the format's masked kinds, the writer and the masked service on fakes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib.domain import masking
from chalicelib.envelope.format import (
    FULL_KINDS,
    KIND_MASKED_POOL,
    KIND_MASKED_TENANT,
    KIND_POOL,
    KIND_TENANT,
    MASKED_KINDS,
    MASKED_VIEW,
    Opener,
    RecordRef,
    Sealer,
    encryption_context,
    parse_blob,
)
from chalicelib.keys.kms import CachingDataKeys, FreshDataKeys
from chalicelib.keys.refs import KeyTableResolver, PublishedDataKeys
from chalicelib.service import MaskedService, ReaderService, WriterService
from chalicelib.store.person_item import person_from_item, person_item, person_update
from chalicelib.store.records import PersonRecord, PersonWrite
from chalicelib.support.errors import IntegrityError, NotFoundError
from tests.fakes import FakeKms, FixedClock, InMemoryStore
from tests.plaintext_guard import register
from tools.sample import person

PERSON = person()
register(PERSON)
MASKED = {
    "name": PERSON["name"][0] + ".",
    "surname": PERSON["surname"][0] + ".",
    "email": PERSON["email"][0] + "***@" + PERSON["email"].split("@")[1],
    "dob": PERSON["dob"][:4],
    "address": {"city": PERSON["address"]["city"], "country": PERSON["address"]["country"]},
}


class ContextLog:
    """A fake KMS decryptor that records the encryption context of every unwrap."""

    def __init__(self, kms: FakeKms) -> None:
        self.kms = kms
        self.contexts: list[dict[str, str]] = []

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        self.contexts.append(dict(context))
        return self.kms.unwrap(wrapped, context)


@pytest.fixture
def kms() -> FakeKms:
    return FakeKms()


@pytest.fixture
def repo() -> InMemoryStore:
    return InMemoryStore()


def _writer(repo: InMemoryStore, kms: FakeKms, *, masked: bool = True, scope: str = "pool") -> WriterService:
    keys = PublishedDataKeys(FreshDataKeys(kms.encryptor()), kms.keys)
    masked_sealer = Sealer(keys, "pii-vault", scope=scope, view=MASKED_VIEW) if masked else None
    return WriterService(repo, Sealer(keys, "pii-vault", scope=scope), clock=FixedClock(), masked_sealer=masked_sealer)


@pytest.fixture
def writer(repo: InMemoryStore, kms: FakeKms) -> WriterService:
    return _writer(repo, kms)


@pytest.fixture
def masked_log(kms: FakeKms) -> ContextLog:
    return ContextLog(kms)


@pytest.fixture
def masked(repo: InMemoryStore, masked_log: ContextLog, kms: FakeKms) -> MaskedService:
    resolver = KeyTableResolver(kms.keys, masked_log)
    return MaskedService(repo, Opener(masked_log, "pii-vault", kinds=MASKED_KINDS, resolver=resolver))


@pytest.fixture
def reader(repo: InMemoryStore, kms: FakeKms) -> ReaderService:
    return ReaderService(repo, Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver()))


# -- projections --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "projection"),
    [
        ("name", "Grace", "G."),
        ("surname", "Émilie", "É."),
        ("email", "grace@example.com", "g***@example.com"),
        ("email", "xyz@sub.example.org", "x***@sub.example.org"),
        # values the initial would show whole, or nearly: nothing of them is shown
        ("email", "x@sub.example.org", "***@sub.example.org"),
        ("email", "jo@example.com", "***@example.com"),
        ("surname", "李", "*"),
        ("name", "J", "*"),
        ("name", "Jo", "J."),
        ("dob", "1906-12-09", "1906"),
        (
            "address",
            {"line1": "1 Harbour St", "city": "London", "postal_code": "E1 6AN", "country": "GB"},
            {"city": "London", "country": "GB"},
        ),
    ],
)
def test_given_each_field_then_its_documented_projection(field: str, value: Any, projection: Any) -> None:
    assert masking.masked({field: value}) == {field: projection}


# -- format: the masked kinds -------------------------------------------------------


def test_given_the_masked_kinds_then_their_contexts_add_view_masked_to_the_full_ones() -> None:
    for full, masked_kind in ((KIND_TENANT, KIND_MASKED_TENANT), (KIND_POOL, KIND_MASKED_POOL)):
        assert encryption_context("pii-vault", "acme", masked_kind) == {
            **encryption_context("pii-vault", "acme", full),
            "view": "masked",
        }
    assert all("view" not in encryption_context("pii-vault", "acme", kind) for kind in FULL_KINDS)


@pytest.mark.parametrize("scope", ["pool", "tenant"])
def test_given_a_masked_sealer_then_its_blobs_carry_a_masked_kind_and_only_a_masked_opener_opens_them(
    kms: FakeKms, scope: str
) -> None:
    ref = RecordRef("acme", "person", "a" * 32)
    sealed = Sealer(kms.data_keys(), "pii-vault", scope=scope, view=MASKED_VIEW).seal(ref, {"name": b"G."})
    assert parse_blob(sealed.blobs["name"]).kind in MASKED_KINDS
    masked_opener = Opener(kms.decryptor(), "pii-vault", kinds=MASKED_KINDS, resolver=kms.resolver())
    assert masked_opener.open(ref, sealed.blobs, {}, ["name"], refs=sealed.refs()) == {"name": b"G."}
    calls = kms.decrypt_calls
    with pytest.raises(IntegrityError, match="another view"):
        Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver()).open(
            ref, sealed.blobs, {}, ["name"], refs=sealed.refs()
        )
    assert kms.decrypt_calls == calls  # refused before any unwrap


def test_given_a_full_view_blob_then_a_masked_opener_refuses_it_before_kms(kms: FakeKms) -> None:
    ref = RecordRef("acme", "person", "a" * 32)
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(ref, {"name": PERSON["name"].encode()})
    with pytest.raises(IntegrityError):
        Opener(kms.decryptor(), "pii-vault", kinds=MASKED_KINDS, resolver=kms.resolver()).open(
            ref, sealed.blobs, {}, ["name"], refs=sealed.refs()
        )
    assert kms.decrypt_calls == 0


# -- writer and masked service ------------------------------------------------------


def test_given_a_person_written_then_the_masked_stage_opens_projections_under_masked_contexts_only(
    writer: WriterService, masked: MaskedService, masked_log: ContextLog, kms: FakeKms
) -> None:
    created = writer.create_person("acme", PERSON)
    assert kms.encrypt_calls == 2  # the full view's data key and the masked view's

    view = masked.get_person("acme", created.id)

    assert view.data == MASKED and view.version == 1
    assert masked_log.contexts and all(context.get("view") == "masked" for context in masked_log.contexts)


def test_given_records_then_the_masked_service_never_sees_full_ciphertext(
    writer: WriterService, repo: InMemoryStore
) -> None:
    created = writer.create_person("acme", PERSON)
    record = repo.get_masked_person("acme", created.id)
    assert record is not None
    assert record.fields == {} and record.refs == {} and record.slots == {}
    assert set(record.masked) == {*PERSON, "_updated"} and set(record.masked_refs) == {"0"}


def test_given_caches_on_then_each_view_wraps_one_data_key_for_many_records(repo: InMemoryStore, kms: FakeKms) -> None:
    keys = CachingDataKeys(kms.data_keys(), max_records=1000, max_age_seconds=3600)
    writer = WriterService(
        repo,
        Sealer(keys, "pii-vault"),
        clock=FixedClock(),
        masked_sealer=Sealer(keys, "pii-vault", view=MASKED_VIEW),
    )
    for customer in ("acme", "globex", "initech") * 100:
        writer.create_person(customer, PERSON)
    assert kms.encrypt_calls == 2  # 300 records: 2 / 300 KMS calls per record


def test_given_a_patch_then_its_projection_and_metadata_follow(
    writer: WriterService, masked: MaskedService, reader: ReaderService
) -> None:
    created = writer.create_person("acme", PERSON)
    writer.patch_person("acme", created.id, {"email": "zed@example.net"}, 1)

    view = masked.get_person("acme", created.id)

    assert view.version == 2 and view.data == {**MASKED, "email": "z***@example.net"}
    assert reader.get_person("acme", created.id).data["email"] == "zed@example.net"


def test_given_fields_then_only_those_and_missing_ones_answer_none(
    writer: WriterService, masked: MaskedService, repo: InMemoryStore
) -> None:
    created = writer.create_person("acme", PERSON)
    assert masked.get_person("acme", created.id, ("dob",)).data == {"dob": MASKED["dob"]}
    repo.people[("acme", created.id)].masked.pop("email")
    assert masked.get_person("acme", created.id, ("email", "name")).data == {"email": None, "name": MASKED["name"]}


def test_given_a_record_without_a_masked_view_then_every_field_is_none(
    repo: InMemoryStore, kms: FakeKms, masked: MaskedService, reader: ReaderService
) -> None:
    created = _writer(repo, kms, masked=False).create_person("acme", PERSON)
    assert masked.get_person("acme", created.id).data == dict.fromkeys(PERSON)
    assert reader.get_person("acme", created.id).data == PERSON


def test_given_a_writer_without_the_view_then_a_patch_removes_the_whole_masked_view(
    repo: InMemoryStore, kms: FakeKms, writer: WriterService, masked: MaskedService
) -> None:
    created = writer.create_person("acme", PERSON)
    _writer(repo, kms, masked=False).patch_person("acme", created.id, {"name": "Zed"}, 1)
    record = repo.people[("acme", created.id)]
    assert record.masked == {} and record.masked_refs == {}
    assert masked.get_person("acme", created.id).data == dict.fromkeys(PERSON)


def test_given_projections_without_sealed_metadata_then_integrity_error(
    writer: WriterService, masked: MaskedService, repo: InMemoryStore
) -> None:
    created = writer.create_person("acme", PERSON)
    del repo.people[("acme", created.id)].masked["_updated"]
    with pytest.raises(IntegrityError):
        masked.get_person("acme", created.id)


def test_given_an_edited_version_then_the_masked_metadata_fails(
    writer: WriterService, masked: MaskedService, repo: InMemoryStore
) -> None:
    created = writer.create_person("acme", PERSON)
    repo.people[("acme", created.id)].version = 9
    with pytest.raises(IntegrityError):
        masked.get_person("acme", created.id)


def test_given_pages_and_multi_get_then_masked_views_and_missing(writer: WriterService, masked: MaskedService) -> None:
    ids = [writer.create_person("acme", PERSON).id for _ in range(3)]
    page = masked.list_people("acme", 2)
    assert len(page.items) == 2 and page.next_token
    batch = masked.get_people("acme", [ids[0], "f" * 32])
    assert [v.id for v in batch.items] == [ids[0]] and batch.missing == ["f" * 32]
    assert batch.items[0].data == MASKED
    with pytest.raises(NotFoundError):
        masked.get_person("acme", "e" * 32)


# -- layout ---------------------------------------------------------------------------


def test_given_a_record_with_a_masked_view_then_the_item_round_trips_in_its_own_attributes() -> None:
    f, m = bytes([3, 2, ord("0")]) + b"f" * 28, bytes([3, 4, ord("0")]) + b"m" * 28  # v3 headers
    record = PersonRecord(
        "acme",
        "a" * 32,
        1,
        "t",
        "t",
        {"name": f},
        refs={"0": b"r" * 16},
        masked={"name": m},
        masked_refs={"0": b"x" * 16},
    )
    item = person_item(record)
    assert item["fn"] == {"B": f} and item["mn"] == {"B": m} and item["j0"] == {"B": b"x" * 16}
    assert item["k0"] == {"B": b"r" * 16}
    assert person_from_item("acme", item) == record


def test_given_a_replace_then_it_removes_the_masked_slots_earlier_patches_left() -> None:
    write = PersonWrite("acme", "a" * 32, "t", {}, {}, masked_refs={"0": b"x" * 16}, drop_masked_refs=("0", "n", "e"))
    update = person_update(write)
    removed = {
        update["ExpressionAttributeNames"][n] for n in update["UpdateExpression"].split(" REMOVE ")[1].split(", ")
    }
    assert removed == {"jn", "je"}
