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
from typing import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.crypto import WrappedKey
from chalicelib.errors import IntegrityError, NotFoundError, StorageError
from chalicelib.store.layout import decode_page_token, encode_page_token
from chalicelib.store.records import (
    Page,
    PersonRecord,
    PersonWrite,
    SecretVersion,
    SecretVersionConflict,
    check_secret_version,
    condition_failed,
)


class InMemoryStore:
    """Dict-backed Store with the same conditional semantics as DynamoDbStore."""

    def __init__(self) -> None:
        self.people: dict[tuple[str, str], PersonRecord] = {}
        self.secret_heads: dict[tuple[str, str], int] = {}
        self.secrets: dict[tuple[str, str, int], SecretVersion] = {}
        self._lock = threading.Lock()  # DynamoDB's per-item atomicity, for threaded tests

    def create_person(self, record: PersonRecord) -> None:
        key = (record.customer_id, record.person_id)
        if key in self.people:
            raise StorageError("a record with this id already exists")
        self.people[key] = copy.deepcopy(record)

    def _existing(self, customer_id: str, person_id: str, expected_version: int | None) -> PersonRecord:
        current = self.people.get((customer_id, person_id))
        if current is None or (expected_version is not None and current.version != expected_version):
            raise condition_failed(expected_version, "person")
        return current

    def replace_person(self, write: PersonWrite, expected_version: int | None) -> int:
        current = self._existing(write.customer_id, write.person_id, expected_version)
        current.slots, current.fields = {}, {}
        return self._update(current, write)

    def patch_person(self, write: PersonWrite, expected_version: int | None) -> int:
        return self._update(self._existing(write.customer_id, write.person_id, expected_version), write)

    @staticmethod
    def _update(current: PersonRecord, write: PersonWrite) -> int:
        current.version += 1
        current.updated_at = write.updated_at
        current.kms_key = write.kms_key
        current.slots.update(write.slots)
        current.fields.update(write.fields)
        return current.version

    def delete_person(self, customer_id: str, person_id: str, expected_version: int | None) -> None:
        self._existing(customer_id, person_id, expected_version)
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

    def get_people(self, customer_id: str, person_ids) -> list[PersonRecord]:
        wanted = list(dict.fromkeys(person_ids))
        return [copy.deepcopy(self.people[(customer_id, pid)]) for pid in wanted if (customer_id, pid) in self.people]

    def put_secret_version(self, secret: SecretVersion, expected_latest: int) -> None:
        if secret.version != expected_latest + 1:
            raise ValueError("a secret version must follow the latest one")
        check_secret_version(secret.version)
        head = (secret.customer_id, secret.secret_id)
        with self._lock:
            latest = self.secret_heads.get(head, 0)
            if latest != expected_latest:
                raise SecretVersionConflict(latest)
            self.secret_heads[head] = secret.version
            self.secrets[(*head, secret.version)] = copy.deepcopy(secret)

    def delete_secret(self, customer_id: str, secret_id: str) -> None:
        if (customer_id, secret_id) not in self.secret_heads:
            raise NotFoundError("secret not found")
        del self.secret_heads[(customer_id, secret_id)]
        for key in [k for k in self.secrets if k[:2] == (customer_id, secret_id)]:
            del self.secrets[key]

    def get_secret(self, customer_id: str, secret_id: str, version: int | None) -> SecretVersion | None:
        versions = sorted(v for (c, s, v) in self.secrets if (c, s) == (customer_id, secret_id))
        if version is None:
            version = versions[-1] if versions else None
        found = self.secrets.get((customer_id, secret_id, version)) if version else None
        return copy.deepcopy(found) if found else None

    def list_secret_versions(self, customer_id: str, secret_id: str) -> list[SecretVersion]:
        return [
            SecretVersion(customer_id, secret_id, s.version, s.created_at)
            for (c, sid, _v), s in sorted(self.secrets.items())
            if (c, sid) == (customer_id, secret_id)
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

    def encryptor(self) -> "_Encryptor":
        return _Encryptor(self)

    def decryptor(self) -> "_Decryptor":
        return _Decryptor(self)


class _Encryptor:
    def __init__(self, kms: FakeKms) -> None:
        self.wrap = kms.wrap


class _Decryptor:
    def __init__(self, kms: FakeKms) -> None:
        self.unwrap = kms.unwrap


class FixedClock:
    def __init__(self, moment: _dt.datetime | None = None) -> None:
        self.now = moment or _dt.datetime(2026, 11, 24, 12, 0, tzinfo=_dt.timezone.utc)

    def __call__(self) -> _dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += _dt.timedelta(seconds=seconds)

