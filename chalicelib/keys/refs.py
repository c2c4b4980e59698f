"""Key references (format v3): each data key filed once in the key table, found again by readers.

Writer: ``PublishedDataKeys`` sits under the writer's key cache. When a new data key is
made (one ``kms:Encrypt``, once per warm container and key period and view), it computes
the key's reference (``chalicelib/envelope/key_ref.py``) and files the wrapped key in the key
table (one conditional PutItem) before any record can name it. Every record sealed under
the key then holds the 16-byte reference instead of the ~184-byte wrapped key.

Readers: ``KeyTableResolver`` fetches a reference's wrapped key from the key table (one
GetItem), unwraps it (``kms:Decrypt``, through tenant routing) and checks the result against
the reference. ``CachingResolver`` keeps resolved keys per container, bounded in entries and
age, and never past the lifetime its source gives (a fleet entry's expiry): a key a container
keeps lives no longer than the fleet entry it came from. The reader puts the fleet buckets
(``chalicelib/keys/fleet.py``) between the two, so that the key table and KMS are asked about a
pool key once per fleet per fleet-entry lifetime.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Protocol

from chalicelib.envelope.format import DataKeySource, KeyResolver, KeyUnwrapper, WrappedKey
from chalicelib.envelope.key_ref import hour_of, key_ref, matches
from chalicelib.support.errors import IntegrityError


class KeyTable(Protocol):
    """Where wrapped data keys are filed by reference (``chalicelib/store/key_table.py``)."""

    def put(self, context: Mapping[str, str], ref: bytes, wrapped: WrappedKey) -> None:
        """File ``wrapped`` under ``ref`` unless an entry is there already."""
        ...

    def get(self, context: Mapping[str, str], ref: bytes) -> bytes | None:
        """The wrapped key filed under ``ref`` (None: none)."""
        ...


class TimedResolver(KeyResolver, Protocol):
    def resolve_until(self, ref: bytes, context: Mapping[str, str]) -> tuple[bytes, float | None]:
        """The data key and how many more seconds it may be kept (None: no bound of the source's)."""
        ...


class PublishedDataKeys:
    """A ``DataKeySource`` whose new keys are filed in the key table, by reference."""

    def __init__(self, source: DataKeySource, table: KeyTable, clock: Callable[[], float] = time.time) -> None:
        self._source = source
        self._table = table
        self._clock = clock

    def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        data_key, wrapped = self._source.data_key(context)
        ref = key_ref(data_key, hour_of(self._clock()))
        self._table.put(context, ref, wrapped)
        return data_key, replace(wrapped, ref=ref)


class KeyTableResolver:
    """The key table, then KMS (``unwrapper``): one GetItem and one Decrypt per call."""

    def __init__(self, table: KeyTable, unwrapper: KeyUnwrapper) -> None:
        self._table = table
        self._unwrapper = unwrapper

    def resolve(self, ref: bytes, context: Mapping[str, str]) -> bytes:
        wrapped = self._table.get(context, ref)
        if wrapped is None:
            raise IntegrityError("a record names a data key the key table does not hold")
        data_key = self._unwrapper.unwrap(wrapped, context)
        if not matches(data_key, ref):
            raise IntegrityError("the key table's entry is not the data key the record names")
        return data_key


class CachingResolver:
    """A ``KeyResolver`` keeping resolved keys, at most ``max_entries`` (least recently used
    evicted), each for ``max_age_seconds``, or exactly as long as its source says (a fleet
    entry's remaining lifetime: the key is kept no longer than the entry it came from)."""

    def __init__(
        self,
        inner: KeyResolver,
        *,
        max_entries: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._timed: Callable[[bytes, Mapping[str, str]], tuple[bytes, float | None]] | None = getattr(
            inner, "resolve_until", None
        )
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._clock = clock
        self._entries: OrderedDict[tuple[tuple[tuple[str, str], ...], bytes], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def resolve(self, ref: bytes, context: Mapping[str, str]) -> bytes:
        key = (tuple(sorted(context.items())), ref)
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now < hit[1]:
                self._entries.move_to_end(key)
                return hit[0]
            if hit is not None:
                del self._entries[key]
        remaining: float | None = None
        if self._timed is not None:
            data_key, remaining = self._timed(ref, context)
        else:
            data_key = self._inner.resolve(ref, context)
        life = self._max_age if remaining is None else remaining
        if life > 0:
            with self._lock:
                self._entries[key] = (data_key, now + life)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return data_key


def reader_resolver(inner: KeyResolver, *, max_entries: int, max_age_seconds: float) -> KeyResolver:
    """A stage's resolver: cached within the bounds, or ``inner`` itself when a bound is 0."""
    if max_entries <= 0 or max_age_seconds <= 0:
        return inner
    return CachingResolver(inner, max_entries=max_entries, max_age_seconds=max_age_seconds)
