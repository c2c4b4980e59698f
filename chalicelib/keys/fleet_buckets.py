"""The reader fleet's pool keys by day (format v3): one fetch brings a day's keys to a container.

Sharing unwrapped keys key by key (``fleet.FleetKeyTable``) saves KMS calls but not fetches:
a reader container meets keys from the whole history it serves, and under reads spread over
30 days nearly every read met a key that container had not fetched yet (0.99 fleet GetItem
per read on the workload model's goal row). Keys are instead grouped by the day they were
made, which their reference says (``envelope/key_ref.py``), and a container fetches a whole
day with one Query:

- an entry is a pool data key sealed with AES-256-GCM under the fleet sealing key of its
  epoch (``fleet.FleetSealingKeys``: derived by ``kms:GenerateMac`` with a reader-only HMAC
  key), its AAD binding the key reference, the epoch and the expiry; the item is keyed by
  (``d<day>``, reference);
- a container looks a reference up in its copy of that day's entries; a day it has no copy
  of (or one older than ``refresh_seconds``) is fetched whole; a reference missing from a
  fresh copy is fetched alone (another container may have filed it since); a key nobody has
  filed is resolved through the key table and KMS (``backing``) and filed for everyone;
- every key from an entry is checked against its reference (the commitment), so a forged or
  poisoned entry (a reader credential can write this table) is dropped and KMS asked: it can
  cost a KMS call, never a wrong key or a failed read;
- an entry lives ``lifetime_seconds`` from when it was filed, checked by the reader from the
  authenticated expiry (DynamoDB's TTL only cleans up); the container keeps a key no longer
  than its entry (``resolve_until`` tells ``refs.CachingResolver`` how long), so disabling
  the KMS key stops reads fleet-wide within one entry lifetime, as before.

Only pool keys (context ``scope`` = ``pool``) are shared; tenant-scoped keys never enter the
table (deleting a tenant's key must shred its data at once). A failing table is an
optimisation lost: the reader asks the key table and KMS and says so in the log.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.envelope.format import DATA_KEY_BYTES, NONCE_BYTES, TAG_BYTES, KeyResolver
from chalicelib.envelope.key_ref import matches, ref_hour
from chalicelib.keys.fleet import POOL_SCOPE, FleetSealingKeys
from chalicelib.support.errors import PiiVaultError

logger = logging.getLogger(__name__)

_ENTRY_LABEL = b"pii-vault/fleet-bucket-entry/v1"
DAY_HOURS = 24
# Entries of this many days a container keeps (sealed) at most; the oldest day goes first.
DEFAULT_MAX_DAYS = 64


class BucketEntry(NamedTuple):
    """One sealed key of the table (the store hands back plain tuples of these three)."""

    epoch: int
    expires_at: int
    sealed: bytes  # nonce | AES-GCM(data key) || tag


class BucketTable(Protocol):
    """Storage of sealed entries by day (``chalicelib/store/fleet_table.py``)."""

    def query(self, bucket: str) -> Mapping[bytes, tuple[int, int, bytes]]:
        """Every entry of one day: reference -> (epoch, expires_at, sealed)."""
        ...

    def get(self, bucket: str, ref: bytes) -> tuple[int, int, bytes] | None: ...

    def put(self, bucket: str, ref: bytes, entry: tuple[int, int, bytes]) -> None: ...


def bucket_of(ref: bytes) -> str:
    """The day a key reference's key was made: the table's partition key."""
    return f"d{ref_hour(ref) // DAY_HOURS}"


def _aad(ref: bytes, epoch: int, expires_at: int) -> bytes:
    return _ENTRY_LABEL + ref + struct.pack(">QQ", epoch, expires_at)


class FleetBuckets:
    """A ``KeyResolver`` in front of ``backing`` (key table + KMS) sharing pool keys by day."""

    def __init__(
        self,
        backing: KeyResolver,
        table: BucketTable,
        sealing_keys: FleetSealingKeys,
        *,
        lifetime_seconds: int,
        epoch_seconds: int = 86_400,
        refresh_seconds: float | None = None,
        max_days: int = DEFAULT_MAX_DAYS,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if lifetime_seconds <= 0 or epoch_seconds <= 0:
            raise ValueError("fleet lifetimes must be positive (wire the backing resolver to turn the table off)")
        self._backing = backing
        self._table = table
        self._sealing = sealing_keys
        self._lifetime = lifetime_seconds
        self._epoch_seconds = epoch_seconds
        self._refresh = lifetime_seconds / 4 if refresh_seconds is None else refresh_seconds
        self._max_days = max_days
        self._clock = clock
        self._random = random_bytes
        self._days: OrderedDict[str, tuple[float, dict[bytes, BucketEntry]]] = OrderedDict()
        self._lock = threading.Lock()

    def entries(self) -> int:
        """Sealed entries this container holds (its day copies)."""
        with self._lock:
            return sum(len(entries) for _fetched, entries in self._days.values())

    def resolve(self, ref: bytes, context: Mapping[str, str]) -> bytes:
        return self.resolve_until(ref, context)[0]

    def resolve_until(self, ref: bytes, context: Mapping[str, str]) -> tuple[bytes, float | None]:
        if context.get("scope") != POOL_SCOPE:
            return self._backing.resolve(ref, context), None
        now = int(self._clock())
        bucket = bucket_of(ref)
        copy, fetched = self._copy(bucket, now)
        entry = copy.get(ref) if copy is not None else None
        key = self._open(ref, entry, now) if entry is not None else None
        if key is None and not fetched:  # filed since this container's copy: ask for it alone
            entry = self._get(bucket, ref)
            key = self._open(ref, entry, now) if entry is not None else None
        if key is not None and entry is not None:
            self._remember(bucket, ref, entry)
            return key, float(entry.expires_at - now)
        key = self._backing.resolve(ref, context)  # checked against the reference by the key table's resolver
        entry = self._seal(ref, key, now)
        if entry is not None:
            self._remember(bucket, ref, entry)
            return key, float(self._lifetime)
        return key, None

    def _copy(self, bucket: str, now: float) -> tuple[dict[bytes, BucketEntry] | None, bool]:
        """This container's copy of a day's entries, and whether it was fetched just now (one
        Query, when there was none or it was older than ``refresh_seconds``)."""
        with self._lock:
            known = self._days.get(bucket)
            if known is not None:
                self._days.move_to_end(bucket)
        if known is not None and now - known[0] < self._refresh:
            return known[1], False
        try:
            entries = {ref: BucketEntry(*entry) for ref, entry in self._table.query(bucket).items()}
        except Exception as exc:  # noqa: BLE001 - an optimisation must not fail the read
            logger.warning("fleet key table query failed (%s); asking the key table", type(exc).__name__)
            return None, False
        with self._lock:
            self._days[bucket] = (now, entries)
            self._days.move_to_end(bucket)
            while len(self._days) > self._max_days:
                self._days.popitem(last=False)
        return entries, True

    def _get(self, bucket: str, ref: bytes) -> BucketEntry | None:
        try:
            found = self._table.get(bucket, ref)
            return None if found is None else BucketEntry(*found)
        except Exception as exc:  # noqa: BLE001 - an optimisation must not fail the read
            logger.warning("fleet key table read failed (%s); asking the key table", type(exc).__name__)
            return None

    def _remember(self, bucket: str, ref: bytes, entry: BucketEntry | None) -> None:
        if entry is None:
            return
        with self._lock:
            known = self._days.get(bucket)
            if known is not None:
                known[1][ref] = entry

    def _open(self, ref: bytes, entry: BucketEntry, now: int) -> bytes | None:
        """The key an entry holds, or None (expired, impossible, forged: logged, never used)."""
        if entry.expires_at <= now or len(entry.sealed) < NONCE_BYTES + TAG_BYTES:
            return None
        oldest = (now - self._lifetime) // self._epoch_seconds
        if not oldest <= entry.epoch <= now // self._epoch_seconds or entry.expires_at > now + self._lifetime:
            logger.error("fleet key table entry has an impossible epoch or expiry: integrity_error; asking KMS")
            return None
        try:
            sealing_key = self._sealing.key(entry.epoch)
        except PiiVaultError as exc:
            logger.warning("fleet sealing key unavailable (%s); asking KMS", exc.code)
            return None
        try:
            key = AESGCM(sealing_key).decrypt(
                entry.sealed[:NONCE_BYTES], entry.sealed[NONCE_BYTES:], _aad(ref, entry.epoch, entry.expires_at)
            )
        except InvalidTag:
            logger.error("fleet key table entry failed authentication: integrity_error; asking KMS")
            return None
        if len(key) != DATA_KEY_BYTES or not matches(key, ref):
            logger.error("fleet key table entry is not the key its reference names: integrity_error; asking KMS")
            return None
        return key

    def _seal(self, ref: bytes, key: bytes, now: int) -> BucketEntry | None:
        epoch, expires_at = now // self._epoch_seconds, now + self._lifetime
        try:
            sealing_key = self._sealing.key(epoch)
        except PiiVaultError as exc:
            logger.warning("fleet sealing key unavailable (%s); entry not shared", exc.code)
            return None
        nonce = self._random(NONCE_BYTES)
        sealed = nonce + AESGCM(sealing_key).encrypt(nonce, key, _aad(ref, epoch, expires_at))
        entry = BucketEntry(epoch, expires_at, sealed)
        try:
            self._table.put(bucket_of(ref), ref, entry)
        except Exception as exc:  # noqa: BLE001 - the next reader will simply ask KMS too
            logger.warning("fleet key table write failed (%s)", type(exc).__name__)
        return entry
