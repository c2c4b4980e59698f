"""Fakes for unit tests: an in-memory store and in-memory key wrapping.

They honour the same contracts as the real ones (tests/integration/test_repository_contract.py
runs one suite over both stores), so service tests against them mean something.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.envelope.format import DataKeySource, KeyResolver, WrappedKey
from chalicelib.keys.kms import FreshDataKeys
from chalicelib.keys.refs import KeyTableResolver, PublishedDataKeys
from chalicelib.store.key_table import partition_of
from chalicelib.store.page_token import decode_page_token, encode_page_token
from chalicelib.store.records import (
    ADOPT_V2,
    CREATED_SEALED,
    DeleteProgress,
    Page,
    PersonRecord,
    PersonShape,
    PersonVersionConflict,
    PersonWrite,
    SecretHead,
    SecretRead,
    SecretVersion,
    SecretVersionConflict,
    check_secret_version,
    condition_failed,
    shape_of,
)
from chalicelib.support.errors import IntegrityError, NotFoundError, StorageError


def _same_shape(stored: PersonShape, expected: PersonShape) -> bool:
    """The DynamoDB store's condition (chalicelib/store/person_item.py) on records: the version,
    and the creation vouching the write assumed (a sealed record satisfies either seal)."""
    if stored.version != expected.version:
        return False
    if expected.created == CREATED_SEALED:
        return stored.created == CREATED_SEALED
    return stored.created == expected.created and stored.proof == expected.proof


class InMemoryStore:
    """Dict-backed Store with the same conditional semantics as DynamoDbStore."""

    def __init__(self) -> None:
        self.people: dict[tuple[str, str], PersonRecord] = {}
        self.secret_heads: dict[tuple[str, str], SecretHead] = {}
        self.secrets: dict[tuple[str, str, int], SecretVersion] = {}
        self._lock = threading.Lock()  # DynamoDB's per-item atomicity, for threaded tests

    def create_person(self, record: PersonRecord) -> None:
        key = (record.customer_id, record.person_id)
        if key in self.people:
            raise StorageError("a record with this id already exists")
        self.people[key] = copy.deepcopy(record)

    def update_person(self, write: PersonWrite) -> int:
        with self._lock:
            current = self.people.get((write.customer_id, write.person_id))
            if current is None:
                raise PersonVersionConflict(None)
            stored = shape_of(current)
            if not _same_shape(stored, write.shape):
                raise PersonVersionConflict(stored)
            for slot in write.drop_refs:
                if slot not in write.refs:
                    current.refs.pop(slot, None)
            for slot in write.drop_masked_refs:
                if slot not in write.masked_refs:
                    current.masked_refs.pop(slot, None)
            for name in write.drop_masked:
                current.masked.pop(name, None)
            current.version = write.version
            current.updated_at = write.updated_at
            current.refs.update(write.refs)
            current.fields.update(write.fields)
            current.masked_refs.update(write.masked_refs)
            current.masked.update(write.masked)
            if write.shape.created == ADOPT_V2:
                current.proof = write.shape.proof
            current.legacy_names = False
            return current.version

    def delete_person(self, customer_id: str, person_id: str, expected_version: int | None) -> None:
        current = self.people.get((customer_id, person_id))
        if current is None or (expected_version is not None and current.version != expected_version):
            raise condition_failed(expected_version, "person")
        del self.people[(customer_id, person_id)]

    def get_person(self, customer_id: str, person_id: str) -> PersonRecord | None:
        record = self.people.get((customer_id, person_id))
        return copy.deepcopy(record) if record else None

    def list_people(self, customer_id: str, limit: int, token: str | None) -> Page:
        after = decode_page_token(token) if token is not None else ""
        ids = sorted(pid for (cid, pid) in self.people if cid == customer_id and pid > after)
        chosen = ids[:limit]
        next_token = encode_page_token(chosen[-1]) if len(ids) > limit else None
        return Page([copy.deepcopy(self.people[(customer_id, pid)]) for pid in chosen], next_token)

    def get_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]:
        wanted = list(dict.fromkeys(person_ids))
        return [copy.deepcopy(self.people[(customer_id, pid)]) for pid in wanted if (customer_id, pid) in self.people]

    # The masked stage's reads: only the key, plaintext metadata and masked view (as the
    # DynamoDB store's projection fetches them).
    @staticmethod
    def _masked_only(record: PersonRecord) -> PersonRecord:
        return replace(copy.deepcopy(record), kms_key="", slots={}, refs={}, fields={}, proof=None)

    def get_masked_person(self, customer_id: str, person_id: str) -> PersonRecord | None:
        record = self.people.get((customer_id, person_id))
        return self._masked_only(record) if record else None

    def list_masked_people(self, customer_id: str, limit: int, token: str | None) -> Page:
        page = self.list_people(customer_id, limit, token)
        return Page([self._masked_only(record) for record in page.items], page.next_token)

    def get_masked_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]:
        return [self._masked_only(record) for record in self.get_people(customer_id, person_ids)]

    def put_secret_version(self, secret: SecretVersion, expected: SecretHead, new_head: SecretHead) -> None:
        if secret.version != expected.latest + 1 or new_head.latest != secret.version:
            raise ValueError("a secret version must follow the latest one")
        check_secret_version(secret.version)
        key = (secret.customer_id, secret.secret_id)
        with self._lock:
            head = self.secret_heads.get(key, SecretHead())
            same = head.latest == expected.latest and (
                expected.latest == 0 or (not head.deleting and head.incarnation == expected.incarnation)
            )
            if not same:
                raise SecretVersionConflict(head)
            self.secret_heads[key] = new_head
            self.secrets[(*key, secret.version)] = copy.deepcopy(secret)

    def delete_secret(
        self, customer_id: str, secret_id: str, max_versions: int, before_removal: Callable[[], None] | None = None
    ) -> DeleteProgress:
        key = (customer_id, secret_id)
        with self._lock:
            head = self.secret_heads.get(key)
            if head is None:
                raise NotFoundError("secret not found")
            self.secret_heads[key] = replace(head, deleting=True)
            if before_removal is not None:
                before_removal()
            numbers = sorted(v for (c, s, v) in self.secrets if (c, s) == key)
            for number in numbers[-max_versions:]:  # newest first, as DynamoDbSecrets
                del self.secrets[(*key, number)]
            remaining = max(0, len(numbers) - max_versions)
            if not remaining:
                del self.secret_heads[key]
            return DeleteProgress(remaining)

    def get_secret(self, customer_id: str, secret_id: str, version: int | None) -> SecretRead | None:
        head = self.secret_heads.get((customer_id, secret_id))
        if head is None or head.deleting:
            return None
        number = head.latest if version is None else version
        found = self.secrets.get((customer_id, secret_id, number)) if number <= head.latest else None
        if found is None and version is None:
            raise IntegrityError("the latest version a secret's head names is missing")
        return SecretRead(head, copy.deepcopy(found)) if found else None

    def list_secret_versions(self, customer_id: str, secret_id: str) -> list[SecretVersion]:
        head = self.secret_heads.get((customer_id, secret_id))
        if head is None or head.deleting:
            return []
        return [
            SecretVersion(customer_id, secret_id, s.version, s.created_at)
            for (c, sid, _v), s in sorted(self.secrets.items())
            if (c, sid) == (customer_id, secret_id) and s.version <= head.latest
        ]


class FakeKms:
    """In-memory key wrapping with KMS semantics: the context is authenticated, calls counted.

    ``encryptor()`` and ``decryptor()`` hand out one-capability views, like the two IAM roles.
    """

    KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"

    def __init__(self) -> None:
        self._master = AESGCM(os.urandom(32))
        self.encrypt_calls = 0
        self.decrypt_calls = 0
        self.keys = InMemoryKeyTable()

    def data_keys(self) -> DataKeySource:
        """Fresh data keys per record, each filed in ``keys`` (as the writer's chain, uncached)."""
        return PublishedDataKeys(FreshDataKeys(self.encryptor()), self.keys)

    def resolver(self) -> KeyResolver:
        """Key references resolved through ``keys`` and this KMS (as the readers', uncached)."""
        return KeyTableResolver(self.keys, self.decryptor())

    @staticmethod
    def _aad(context: Mapping[str, str]) -> bytes:
        return json.dumps(dict(context), sort_keys=True).encode()

    def wrap(self, data_key: bytes, context: Mapping[str, str]) -> WrappedKey:
        self.encrypt_calls += 1
        nonce = os.urandom(12)
        return WrappedKey(nonce + self._master.encrypt(nonce, data_key, self._aad(context)), self.KEY_ARN)

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        self.decrypt_calls += 1
        try:
            return self._master.decrypt(wrapped[:12], wrapped[12:], self._aad(context))
        except (InvalidTag, ValueError):
            raise IntegrityError("a wrapped data key failed authentication") from None

    def encryptor(self) -> _Encryptor:
        return _Encryptor(self)

    def decryptor(self) -> _Decryptor:
        return _Decryptor(self)


class _Encryptor:
    def __init__(self, kms: FakeKms) -> None:
        self.wrap = kms.wrap


class _Decryptor:
    def __init__(self, kms: FakeKms) -> None:
        self.unwrap = kms.unwrap


class InMemoryKeyTable:
    """``keys.refs.KeyTable`` in a dict, with the DynamoDB store's semantics (first entry wins)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, bytes], WrappedKey] = {}
        self.gets = 0

    def put(self, context: Mapping[str, str], ref: bytes, wrapped: WrappedKey) -> None:
        self.entries.setdefault((partition_of(context), ref), wrapped)

    def get(self, context: Mapping[str, str], ref: bytes) -> bytes | None:
        self.gets += 1
        found = self.entries.get((partition_of(context), ref))
        return None if found is None else found.blob


class FixedClock:
    def __init__(self, moment: _dt.datetime | None = None) -> None:
        self.now = moment or _dt.datetime(2026, 11, 24, 12, 0, tzinfo=_dt.UTC)

    def __call__(self) -> _dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += _dt.timedelta(seconds=seconds)
