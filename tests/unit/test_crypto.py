"""Envelope encryption: binding, tamper detection and KMS call counts, with fake KMS."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib.envelope.format import (
    DATA_KEY_BYTES,
    FORMAT_V2,
    FORMAT_V3,
    KIND_POOL,
    KIND_TENANT,
    Opener,
    RecordRef,
    Sealer,
    WrappedKey,
    blob_slot,
    open_field,
    seal_field,
)
from chalicelib.support.errors import IntegrityError
from tests.fakes import FakeKms

REF = RecordRef("acme", "person", "a" * 32)
FIELDS = {"name": b"Ada", "surname": b"Lovelace", "email": b"ada@example.com", "dob": b"1915-12-10", "address": b"{}"}


@pytest.fixture
def kms() -> FakeKms:
    return FakeKms()


def test_given_five_fields_when_sealed_then_exactly_one_kms_encrypt_call(kms: FakeKms) -> None:
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(REF, FIELDS)
    assert kms.encrypt_calls == 1
    assert set(sealed.blobs) == set(FIELDS)
    # Format v3: the record names its key by reference; the wrapped key is filed once in the key table.
    assert sealed.refs() == {"0": sealed.wrapped_key.ref} and len(sealed.wrapped_key.ref) == 16
    assert [wrapped.blob for wrapped in kms.keys.entries.values()] == [sealed.wrapped_key.blob]
    assert all(blob[0] == FORMAT_V3 for blob in sealed.blobs.values())


def test_given_a_sealed_record_when_opened_then_one_kms_decrypt_call_and_plaintext_back(kms: FakeKms) -> None:
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(REF, FIELDS)
    opener = Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver())
    opened = opener.open(REF, sealed.blobs, {}, FIELDS, refs=sealed.refs())
    assert opened == FIELDS
    assert kms.decrypt_calls == 1 and kms.keys.gets == 1


def test_given_a_v2_seal_then_the_wrapped_key_is_the_slot_and_opens_without_the_key_table(kms: FakeKms) -> None:
    """What secret versions (and every item written before format v3) keep: the wrapped key inline."""
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(REF, FIELDS, version=FORMAT_V2)
    assert sealed.slots() == {"0": sealed.wrapped_key.blob}
    assert all(blob[0] == FORMAT_V2 for blob in sealed.blobs.values())
    assert Opener(kms.decryptor(), "pii-vault").open(REF, sealed.blobs, sealed.slots(), FIELDS) == FIELDS
    assert kms.keys.gets == 0


def test_given_no_plaintext_in_blobs_when_sealed_then_values_do_not_appear(kms: FakeKms) -> None:
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(REF, FIELDS)
    for value in FIELDS.values():
        if len(value) >= 3:
            assert all(value not in blob for blob in sealed.blobs.values())
            assert value not in sealed.wrapped_key.blob


def test_given_own_slots_when_sealed_then_each_field_uses_its_own_slot(kms: FakeKms) -> None:
    sealer = Sealer(kms.data_keys(), "pii-vault")
    sealed = sealer.seal(REF, {"email": b"x@y.z", "name": b"Z"}, slots={"email": "e", "name": "n"})
    assert {blob_slot(b) for b in sealed.blobs.values()} == {"e", "n"}
    assert set(sealed.refs()) == {"e", "n"}
    assert kms.encrypt_calls == 1


def test_given_a_v3_slot_of_more_than_one_character_then_refused(kms: FakeKms) -> None:
    with pytest.raises(ValueError, match="one ASCII character"):
        Sealer(kms.data_keys(), "pii-vault").seal(REF, {"email": b"x@y.z"}, slots={"email": "email"})


def test_given_same_plaintext_twice_when_sealed_then_ciphertexts_differ(kms: FakeKms) -> None:
    key = os.urandom(DATA_KEY_BYTES)
    assert seal_field(key, REF, "name", "0", b"Ada", kind=KIND_POOL) != seal_field(
        key, REF, "name", "0", b"Ada", kind=KIND_POOL
    )


@pytest.mark.parametrize(
    "other_ref, other_field, why",
    [
        (RecordRef("globex", "person", "a" * 32), "email", "another tenant"),
        (RecordRef("acme", "person", "b" * 32), "email", "another record"),
        (RecordRef("acme", "secret", "a" * 32), "email", "another record type"),
        (REF, "name", "another field"),
    ],
)
def test_given_a_field_ciphertext_when_opened_elsewhere_then_integrity_error(
    other_ref: RecordRef, other_field: str, why: str
) -> None:
    key = os.urandom(DATA_KEY_BYTES)
    blob = seal_field(key, REF, "email", "0", b"ada@example.com", kind=KIND_POOL)
    with pytest.raises(IntegrityError):
        open_field(key, other_ref, other_field, blob)


def test_given_a_slot_header_rewritten_when_opened_then_integrity_error() -> None:
    key = os.urandom(DATA_KEY_BYTES)
    blob = seal_field(key, REF, "email", "0", b"ada@example.com", kind=KIND_POOL)
    forged = blob[:3] + b"1" + blob[4:]
    with pytest.raises(IntegrityError):
        open_field(key, REF, "email", forged)


@pytest.mark.parametrize("cut", [0, 1, 5, 20, -1])
def test_given_a_truncated_ciphertext_when_opened_then_integrity_error(cut: int) -> None:
    key = os.urandom(DATA_KEY_BYTES)
    blob = seal_field(key, REF, "email", "0", b"ada@example.com", kind=KIND_POOL)
    with pytest.raises(IntegrityError):
        open_field(key, REF, "email", blob[:cut])


def test_given_any_bit_flipped_when_opened_then_integrity_error() -> None:
    key = os.urandom(DATA_KEY_BYTES)
    blob = seal_field(key, REF, "email", "0", b"ada@example.com", kind=KIND_POOL)
    for index in range(len(blob)):
        flipped = bytearray(blob)
        flipped[index] ^= 0x01
        with pytest.raises(IntegrityError):
            open_field(key, REF, "email", bytes(flipped))


def test_given_an_unknown_format_version_when_opened_then_integrity_error() -> None:
    key = os.urandom(DATA_KEY_BYTES)
    blob = seal_field(key, REF, "email", "0", b"ada@example.com", kind=KIND_POOL)
    with pytest.raises(IntegrityError, match="format version"):
        open_field(key, REF, "email", b"\x04" + blob[1:])


@pytest.mark.parametrize("version", [FORMAT_V2, FORMAT_V3])
def test_given_a_blob_whose_version_byte_is_changed_then_integrity_error(version: int) -> None:
    """v2 and v3 headers differ (v3 has no slot length), and the version byte is in the AAD."""
    key = os.urandom(DATA_KEY_BYTES)
    blob = seal_field(key, REF, "email", "0", b"ada@example.com", kind=KIND_POOL, version=version)
    other = FORMAT_V3 if version == FORMAT_V2 else FORMAT_V2
    with pytest.raises(IntegrityError):
        open_field(key, REF, "email", bytes([other]) + blob[1:])


def test_given_wrapped_key_of_another_tenant_when_opened_then_integrity_error(kms: FakeKms) -> None:
    sealer = Sealer(kms.data_keys(), "pii-vault")
    mine = sealer.seal(REF, FIELDS)
    theirs = sealer.seal(RecordRef("globex", "person", "a" * 32), FIELDS)
    with pytest.raises(IntegrityError):
        Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver()).open(
            REF, mine.blobs, {}, ["name"], refs=theirs.refs()
        )


def test_given_a_missing_slot_when_opened_then_integrity_error_naming_the_field(kms: FakeKms) -> None:
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(REF, FIELDS)
    with pytest.raises(IntegrityError, match="field email"):
        Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver()).open(REF, sealed.blobs, {}, ["email"], refs={})


def test_given_only_some_fields_wanted_when_opened_then_only_those_are_returned(kms: FakeKms) -> None:
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(REF, FIELDS)
    opener = Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver())
    assert opener.open(REF, sealed.blobs, {}, ["email"], refs=sealed.refs()) == {"email": FIELDS["email"]}


def test_given_a_request_memo_when_opening_twice_then_kms_is_called_once(kms: FakeKms) -> None:
    sealed = Sealer(kms.data_keys(), "pii-vault").seal(REF, FIELDS)
    opener = Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver()).for_request()
    opener.open(REF, sealed.blobs, {}, FIELDS, refs=sealed.refs())
    opener.open(REF, sealed.blobs, {}, FIELDS, refs=sealed.refs())
    assert kms.decrypt_calls == 1 and kms.keys.gets == 1


def test_given_capability_views_then_writer_cannot_unwrap_and_reader_cannot_wrap(kms: FakeKms) -> None:
    assert not hasattr(kms.encryptor(), "unwrap")
    assert not hasattr(kms.decryptor(), "wrap")


def test_given_one_envelope_when_sealing_two_records_then_one_kms_call_and_each_opens_only_as_itself(
    kms: FakeKms,
) -> None:
    envelope = Sealer(kms.data_keys(), "pii-vault").envelope("acme")
    first = envelope.seal(RecordRef("acme", "secret", "s#v1"), {"value": b"one"})
    second = envelope.seal(RecordRef("acme", "secret", "s#v2"), {"value": b"two"})
    assert kms.encrypt_calls == 1
    opener = Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver())
    assert opener.open(RecordRef("acme", "secret", "s#v2"), second.blobs, {}, ["value"], refs=second.refs()) == {
        "value": b"two"
    }
    with pytest.raises(IntegrityError):
        opener.open(RecordRef("acme", "secret", "s#v2"), first.blobs, {}, ["value"], refs=first.refs())


def test_given_an_envelope_of_one_tenant_when_sealing_for_another_then_refused(kms: FakeKms) -> None:
    envelope = Sealer(kms.data_keys(), "pii-vault").envelope("acme")
    with pytest.raises(ValueError, match="own tenant"):
        envelope.seal(RecordRef("globex", "person", "a" * 32), {"name": b"x"})


class _KmsAnswering:
    """A KMS client stub whose answers name ``used`` as the key that did the work."""

    def __init__(self, used: str) -> None:
        self.used = used

    def encrypt(self, **kwargs: Any) -> dict[str, Any]:
        return {"CiphertextBlob": b"wrapped", "KeyId": self.used}

    def decrypt(self, **kwargs: Any) -> dict[str, Any]:
        return {"Plaintext": b"k" * 32, "KeyId": self.used}


PINNED = "arn:aws:kms:us-east-1:111122223333:key/0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80"
OTHER = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555"


def test_given_a_key_pinned_by_arn_when_kms_answers_with_another_key_then_refused() -> None:
    from chalicelib.keys.kms import KmsDecryptor, KmsEncryptor
    from chalicelib.support.errors import KeyServiceError

    with pytest.raises(KeyServiceError):
        KmsEncryptor(_KmsAnswering(OTHER), PINNED).wrap(b"k" * 32, {"app": "pii-vault", "customer_id": "acme"})
    with pytest.raises(KeyServiceError):
        KmsDecryptor(_KmsAnswering(OTHER), PINNED).unwrap(b"wrapped", {"app": "pii-vault", "customer_id": "acme"})
    assert KmsEncryptor(_KmsAnswering(PINNED), PINNED).wrap(b"k" * 32, {"customer_id": "acme"}).key_id == PINNED
    assert KmsDecryptor(_KmsAnswering(PINNED), PINNED).unwrap(b"wrapped", {"customer_id": "acme"}) == b"k" * 32


def test_given_a_v2_blob_when_opened_with_another_binding_then_integrity_error() -> None:
    key = os.urandom(DATA_KEY_BYTES)
    blob = seal_field(key, REF, "_updated", "0", b"", kind=KIND_POOL, binding="version=2;updated_at=t")
    assert open_field(key, REF, "_updated", blob, "version=2;updated_at=t") == b""
    for forged in ("version=3;updated_at=t", "version=2;updated_at=u", ""):
        with pytest.raises(IntegrityError):
            open_field(key, REF, "_updated", blob, forged)


def test_given_a_v2_blob_when_its_kind_byte_is_changed_then_integrity_error() -> None:
    key = os.urandom(DATA_KEY_BYTES)
    blob = seal_field(key, REF, "email", "0", b"ada@example.com", kind=KIND_POOL)
    with pytest.raises(IntegrityError):
        open_field(key, REF, "email", bytes([blob[0], KIND_TENANT]) + blob[2:])
    with pytest.raises(IntegrityError, match="header"):
        open_field(key, REF, "email", bytes([blob[0], 9]) + blob[2:])


@pytest.mark.parametrize("scope,context_keys", [("pool", {"app", "scope"}), ("tenant", {"app", "customer_id"})])
def test_given_a_scope_then_the_data_key_is_wrapped_under_that_context(scope: str, context_keys: set[str]) -> None:
    seen: list[dict[str, str]] = []

    class Recording:
        def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
            seen.append(dict(context))
            return b"k" * 32, WrappedKey(b"w", "key", ref=b"r" * 16)

    sealed = Sealer(Recording(), "pii-vault", scope=scope).seal(REF, {"name": b"Ada"})
    assert set(seen[0]) == context_keys
    assert sealed.blobs["name"][1] == (KIND_POOL if scope == "pool" else KIND_TENANT)
