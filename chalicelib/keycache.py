"""Bounded data key caches: fewer KMS calls without widening either role.

Writer (``WriterKeyCache``): reuses one random data key, wrapped once with
``kms:Encrypt``, for at most ``max_records`` records and ``max_age_seconds`` per
encryption context (= per tenant: the context names the customer). The writer
still never calls ``kms:Decrypt`` or ``GenerateDataKey``: it keeps the key it made.
Stored format v1 is unchanged; every field stays bound to its own record, field and
slot by the AAD, so reuse does not let ciphertext move between records.

Why bounded by records: AES-256-GCM with random 96-bit nonces stays below a 2**-32
nonce-collision probability for 2**32 seals under one key (NIST SP 800-38D 8.3). A
record seals at most 5 fields, so ``config.MAX_WRITER_KEY_CACHE_RECORDS`` (2**24
records, about 8.4e7 seals) is the hard ceiling; the default (1000) is far below it.

Reader (``ReaderKeyCache``): keeps unwrapped data keys by (encryption context,
SHA-256 of the wrapped key) for ``max_age_seconds``, at most ``max_entries`` keys
(least recently used evicted). A key cached for tenant A is never returned for
tenant B, because the context is part of the cache key.

Trade-off (documented in the README): one data key now protects up to
``max_records`` records, so one KMS Decrypt (and one CloudTrail event) opens a batch
of records rather than one, a key disabled in KMS keeps working in warm Lambdas
until the entries age out, plaintext data keys live in memory for up to
``max_age_seconds``, and records sealed under one cached key share the same stored
wrapped-key bytes (which links them for a table reader). Setting either bound of a
cache to 0 disables that cache.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping

from chalicelib.crypto import DATA_KEY_BYTES, KeyUnwrapper, KeyWrapper, WrappedKey

DEFAULT_MAX_CONTEXTS = 1024


def _context_key(context: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(context.items()))


@dataclass
class _WriterEntry:
    data_key: bytes
    wrapped: WrappedKey
    created: float
    uses: int = 0


class WriterKeyCache:
    """Per-tenant reuse of one wrapped data key, bounded in records and seconds."""

    def __init__(
        self,
        wrapper: KeyWrapper,
        *,
        max_records: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        random_bytes: Callable[[int], bytes] = os.urandom,
        max_contexts: int = DEFAULT_MAX_CONTEXTS,
    ) -> None:
        self._wrapper = wrapper
        self._max_records = max_records
        self._max_age = max_age_seconds
        self._clock = clock
        self._random = random_bytes
        self._max_contexts = max_contexts
        self._entries: OrderedDict[tuple[tuple[str, str], ...], _WriterEntry] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._max_records > 0 and self._max_age > 0

    def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        """A data key for one record: the cached one while within bounds, else a new one."""
        if not self.enabled:
            data_key = self._random(DATA_KEY_BYTES)
            return data_key, self._wrapper.wrap(data_key, context)
        key = _context_key(context)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.uses < self._max_records and now - entry.created < self._max_age:
                entry.uses += 1
                self._entries.move_to_end(key)
                return entry.data_key, entry.wrapped
        # Wrap outside the lock: a KMS round trip must not serialise other tenants.
        data_key = self._random(DATA_KEY_BYTES)
        wrapped = self._wrapper.wrap(data_key, context)
        with self._lock:
            self._entries[key] = _WriterEntry(data_key, wrapped, now, uses=1)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_contexts:
                self._entries.popitem(last=False)
        return data_key, wrapped


class ReaderKeyCache:
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

    @property
    def enabled(self) -> bool:
        return self._max_entries > 0 and self._max_age > 0

    def __len__(self) -> int:
        return len(self._entries)

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        if not self.enabled:
            return self._unwrapper.unwrap(wrapped, context)
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
