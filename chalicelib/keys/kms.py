"""KMS key wrapping split by capability, and the data key sources built on it.

``KmsEncryptor`` only calls ``kms:Encrypt`` (never ``GenerateDataKey``, which would
hand the writer plaintext keys KMS chose, nor ``Decrypt``); ``KmsDecryptor`` only calls
``kms:Decrypt``. Each stage gets exactly one of them, matching its IAM policy.

Writer: ``FreshDataKeys`` makes a random data key per record and wraps it once;
``CachingDataKeys`` wraps any ``DataKeySource`` and reuses one key for at most
``max_records`` records and ``max_age_seconds`` per encryption context (= per tenant:
the context names the customer). The writer still never calls ``kms:Decrypt`` or
``GenerateDataKey``: it keeps the key it made. Stored format v1 is unchanged; every
field stays bound to its own record, field and slot by the AAD, so reuse does not let
ciphertext move between records.

Why bounded by records: AES-256-GCM with random 96-bit nonces stays below a 2**-32
nonce-collision probability for 2**32 seals under one key (NIST SP 800-38D 8.3). A
record seals at most 5 fields, so ``config.MAX_WRITER_KEY_CACHE_RECORDS`` (2**24
records, about 8.4e7 seals) is the hard ceiling; the default (1000) is far below it.

Reader: ``CachingUnwrapper`` wraps any ``KeyUnwrapper`` and keeps unwrapped data keys
by (encryption context, SHA-256 of the wrapped key) for ``max_age_seconds``, at most
``max_entries`` keys (least recently used evicted). A key cached for tenant A is never
returned for tenant B, because the context is part of the cache key.

Trade-off (documented in docs/encryption.md): one data key now protects up to
``max_records`` records, so one KMS Decrypt (and one CloudTrail event) opens a batch
of records rather than one, a key disabled in KMS keeps working in warm Lambdas
until the entries age out, plaintext data keys live in memory for up to
``max_age_seconds``, and records sealed under one cached key share the same stored
wrapped-key bytes (which links them for a table reader). Setting either bound of a
cache to 0 turns it off: ``writer_data_keys`` and ``reader_unwrapper`` then hand out
the uncached source itself, so there is no "enabled" switch on any path.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.envelope.format import DATA_KEY_BYTES, DataKeySource, KeyUnwrapper, KeyWrapper, WrappedKey
from chalicelib.keys.refs import KeyTable, PublishedDataKeys
from chalicelib.support.aws_errors import translated
from chalicelib.support.config import KEY_ARN
from chalicelib.support.errors import KeyServiceError

_INTEGRITY_CODES = ("InvalidCiphertextException", "IncorrectKeyException")
DEFAULT_MAX_CONTEXTS = 1024


def _kms_call(operation: str, call: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one KMS call, translating failures into pii-vault errors without data."""
    with translated("kms", operation, KeyServiceError, integrity_codes=_INTEGRITY_CODES):
        response: dict[str, Any] = call(**kwargs)
    return response


def _check_key(configured: str, used: str, operation: str) -> None:
    """When configured by ARN, KMS must have used exactly that key (belt and braces)."""
    if KEY_ARN.fullmatch(configured) and used != configured:
        raise KeyServiceError(f"kms {operation} answered with another key than the configured one")


class KmsEncryptor:
    """Writer side: wraps data keys with ``kms:Encrypt`` under an encryption context."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def wrap(self, data_key: bytes, context: Mapping[str, str]) -> WrappedKey:
        response = _kms_call(
            "Encrypt",
            self._kms.encrypt,
            KeyId=self._key_id,
            Plaintext=data_key,
            EncryptionContext=dict(context),
        )
        _check_key(self._key_id, response["KeyId"], "Encrypt")
        return WrappedKey(blob=response["CiphertextBlob"], key_id=response["KeyId"])


class KmsDecryptor:
    """Reader side: unwraps data keys with ``kms:Decrypt``, pinned to the configured key."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        response = _kms_call(
            "Decrypt",
            self._kms.decrypt,
            KeyId=self._key_id,
            CiphertextBlob=wrapped,
            EncryptionContext=dict(context),
        )
        _check_key(self._key_id, response.get("KeyId", ""), "Decrypt")
        plaintext: bytes = response["Plaintext"]
        return plaintext


def _context_key(context: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(context.items()))


class FreshDataKeys:
    """A new random data key for every record, wrapped once (one KMS call per write)."""

    def __init__(self, wrapper: KeyWrapper, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._wrapper = wrapper
        self._random = random_bytes

    def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        data_key = self._random(DATA_KEY_BYTES)
        return data_key, self._wrapper.wrap(data_key, context)


@dataclass
class _WriterEntry:
    data_key: bytes
    wrapped: WrappedKey
    created: float
    uses: int = 0


class CachingDataKeys:
    """Per-tenant reuse of one key from ``source``, bounded in records and seconds."""

    def __init__(
        self,
        source: DataKeySource,
        *,
        max_records: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_contexts: int = DEFAULT_MAX_CONTEXTS,
    ) -> None:
        self._source = source
        self._max_records = max_records
        self._max_age = max_age_seconds
        self._clock = clock
        self._max_contexts = max_contexts
        self._entries: OrderedDict[tuple[tuple[str, str], ...], _WriterEntry] = OrderedDict()
        self._lock = threading.Lock()

    def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        """A data key for one record: the cached one while within bounds, else a new one."""
        key = _context_key(context)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.uses < self._max_records and now - entry.created < self._max_age:
                entry.uses += 1
                self._entries.move_to_end(key)
                return entry.data_key, entry.wrapped
        # Wrap outside the lock: a KMS round trip must not serialise other tenants.
        data_key, wrapped = self._source.data_key(context)
        with self._lock:
            self._entries[key] = _WriterEntry(data_key, wrapped, now, uses=1)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_contexts:
                self._entries.popitem(last=False)
        return data_key, wrapped


def writer_data_keys(
    wrapper: KeyWrapper, *, max_records: int, max_age_seconds: float, key_table: KeyTable | None = None
) -> DataKeySource:
    """The writer's data keys: each new one filed in ``key_table`` (format v3: records name it by
    reference), cached within the bounds, or fresh per record when a bound is 0."""
    fresh: DataKeySource = FreshDataKeys(wrapper)
    if key_table is not None:
        fresh = PublishedDataKeys(fresh, key_table)
    if max_records <= 0 or max_age_seconds <= 0:
        return fresh
    return CachingDataKeys(fresh, max_records=max_records, max_age_seconds=max_age_seconds)


class CachingUnwrapper:
    """A ``KeyUnwrapper`` that remembers unwrapped keys, bounded in entries and seconds."""

    def __init__(
        self,
        unwrapper: KeyUnwrapper,
        *,
        max_entries: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import hashlib  # here, not at module level: the writer stage never loads OpenSSL's hashlib

        self._sha256 = hashlib.sha256
        self._unwrapper = unwrapper
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._clock = clock
        self._entries: OrderedDict[tuple[object, ...], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        key = (_context_key(context), self._sha256(wrapped).digest())
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[1] < self._max_age:
                self._entries.move_to_end(key)
                return hit[0]
            if hit is not None:
                del self._entries[key]
        data_key = self._unwrapper.unwrap(wrapped, context)
        with self._lock:
            self._entries[key] = (data_key, now)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return data_key


def reader_unwrapper(unwrapper: KeyUnwrapper, *, max_entries: int, max_age_seconds: float) -> KeyUnwrapper:
    """The reader's unwrapper: cached within the bounds, or ``unwrapper`` itself when a bound is 0."""
    if max_entries <= 0 or max_age_seconds <= 0:
        return unwrapper
    return CachingUnwrapper(unwrapper, max_entries=max_entries, max_age_seconds=max_age_seconds)


class KmsMacKey:
    """Reader side: ``kms:GenerateMac`` (HMAC-SHA-256) with one HMAC key, pinned like the others."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def mac(self, message: bytes) -> bytes:
        response = _kms_call(
            "GenerateMac", self._kms.generate_mac, KeyId=self._key_id, MacAlgorithm="HMAC_SHA_256", Message=message
        )
        _check_key(self._key_id, response.get("KeyId", ""), "GenerateMac")
        mac: bytes = response["Mac"]
        return mac
