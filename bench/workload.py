"""Workload model: KMS calls per record written and read under a realistic multi-tenant load.

    python -m bench.workload [--out docs] [--seed 14] [--measure-s 600] [--churn-mean-s 3600] [--design today]
                             [--jobs N]

Also run by ``make bench`` (bench/run.py; ``--skip-workload`` leaves it out).

A deterministic simulation (seeded RNG, simulated clock: no sleeping, no threads) that
drives the production key objects (``Sealer``/``Opener`` from ``chalicelib/crypto.py``;
``FreshDataKeys``/``CachingDataKeys``, ``CachingUnwrapper`` and ``KmsEncryptor``/``KmsDecryptor``
from ``chalicelib/keys.py``) over a fake KMS client that counts calls.
Every container is its own set of those objects, built as ``chalicelib/api/__init__.py``
builds them at the default bounds of ``chalicelib/config.py`` (see ``Production``, the one
place that constructs and calls them).

Model
-----
- ``tenants`` tenants, popularity Zipf(s=1.1) (rank k has weight k**-1.1).
- ``writers`` warm writer containers and ``readers`` warm reader containers; each request
  goes to a container chosen uniformly at random.
- Writes at ``write_rate``/s and reads at ``read_rate``/s, Poisson (or fixed inter-arrival).
- Churn: a container is replaced after an exponential lifetime (mean ``churn_mean_s``);
  the new one starts with empty caches.
- A read picks a record either uniformly among those written in the last ``history_s``
  ("uniform") or with an exponential age of mean ``recent_mean_s`` ("recent"); the reader
  seals nothing itself: the record's field is sealed under the data key the writer used
  for it and opened through the reader container's ``Opener``.
- Measured: Encrypt calls / records written and KMS calls / records read (Decrypt, plus
  GenerateMac for the fleet table's sealing keys), and fleet key table GetItem / PutItem
  per read, in a window of ``measure_s`` after a warm-up (``warmup_s`` of writes, the last
  ``read_warmup_s`` of it with reads too; today's caches forget everything older than 300 s).

Designs (``DESIGNS``), each pinning the settings that define it:

- ``today``: the design before issue 14, pinned whatever ``chalicelib/config.py``'s defaults
  become: tenant-scoped writer keys (``Sealer(scope="tenant")``) cached 300 s / 1000 records
  per tenant per container, reader ``CachingUnwrapper`` 300 s / 1000 entries, no fleet table.
- ``pool``: pool-scoped writer keys (``Sealer(scope="pool")``, one key per warm writer
  container per period, at the config defaults: 3600 s / 100,000 records); readers as today.
- ``pool+fleet``: ``pool`` plus the reader fleet key table as the reader stage wires it:
  per container ``CachingUnwrapper`` -> ``FleetKeyTable`` (one ``FakeFleetTable`` shared by
  all reader containers; per container ``FleetSealingKeys`` over ``KmsMacKey``) -> KMS Decrypt.
  Its writer history is ``PoolHistory`` (keys named per container and period, no stream fed,
  writers continue from history into the live run) and its fleet table starts in its steady
  state (``PoolHistory.warm``: per key, the renewal chain of table stores walked from the
  key's first record); both checked against a live simulation in tests/unit/test_workload.py.

Timeline and the history shortcut
---------------------------------
Simulated time 0 is the start of the *live* simulation. The whole schedule (arrival times,
containers, tenants, read targets, churn) is drawn first from seeded RNGs; then, from 0 to
``warmup_s + measure_s``, every write and read is played one by one, in time order,
through the containers' production objects. Records older than 0 (the *history*, up to
``history_s``: 30 days x 50 writes/s = 130 M records) are never enumerated. Instead:

1. Writes are a Poisson process whose points carry independent marks (container, tenant),
   so by Poisson thinning the writes of each *stream* are independent Poisson processes.
   A stream is the part of a writer's state that one record's key depends on: for today's
   design (``Design.keys_per_tenant``), one (writer slot, container incarnation, tenant),
   of rate ``write_rate / writers * p(tenant)``. This holds because ``CachingDataKeys`` keeps
   one independent entry per encryption context (= tenant); its LRU bound on contexts
   (1024) could couple tenants only by evicting a live entry, which needs more than 1024
   distinct tenants written in one container within the key age, i.e. more than 1024 writes
   per 300 s per container; ``TodayDesign.check`` refuses scenarios where that can happen.
2. Churn boundaries of every writer slot are drawn for the whole history (exponential
   lifetimes backwards from 0, exact for a memoryless renewal process). Every writer
   container is replaced at time 0, where the live simulation starts with empty caches: a
   real restart of the fleet, so the record-to-key mapping stays exact on both sides of 0;
   the only difference from an unbroken history is one extra restart per slot at time 0.
   Writes are measured only after ``warmup_s`` (> the writer key age), when it has no effect;
   recent-heavy reads reach records from around time 0 only with probability about
   exp(-warmup_s / recent_mean_s) (5% at the defaults, and only some of those are affected).
3. A read of a history record draws its time ``u`` (uniform, or by its age) and its marks
   (writer slot uniform, tenant Zipf): that is exactly how a uniformly chosen point of a
   marked Poisson process is distributed (Slivnyak-Mecke: the record is an extra point at
   ``u`` of an otherwise unchanged Poisson stream). Its key is then found in one of two ways:
   a. If no other read of the run reads the same stream within ``Design.max_key_span_s``
      (300 s today: one writer key never serves records further apart) of ``u``, no other
      read can meet this record's key. The reader side only compares keys (cache entries
      are keyed by the wrapped blob), so any key that no other read meets behaves the same:
      a fresh production writer writes the record and its key stands in. Exact, and it
      covers almost every read of a 30-day history.
   b. Otherwise the stream is generated, from a seed derived from (seed, stream), and fed
      in time order through its own production writer objects over a per-stream fake KMS
      (deterministic: a stream rebuilt after leaving the memo makes the same blobs),
      recording the runs of records that share a wrapped key. If ``u`` lies within a run
      (between its first and last record), the record gets that run's key: the writer's
      choice depends only on earlier records of the stream, and a key still used by a later
      record is used for any record in between (its age and use count were lower).
      Otherwise the previous run's records are replayed (at its first record's time: the
      cache's bounds are the age since the key was made and its use count) through fresh
      production writer objects whose fake KMS and key counters stand where they stood,
      and the record at ``u`` is written: it gets the previous run's key if that is still
      within bounds, else a fresh key.
   What is approximated: a read's extra point is not added to the history other reads see,
   so a fresh key made for it in (b) is never shared with later records of the stream (in an
   unbroken history, records written just after it would reuse it). That can only lose a
   reader cache hit between two reads of the same stream within one key's life, on the
   fraction of reads that start a key; it errs towards more KMS calls and is small next to
   the read columns' values. The number of history records in a read's window is taken as
   its expectation (``write_rate x span``) when choosing between a live and a history record.
   tests/unit/test_workload.py checks the shortcut against simulating the same history live.
4. History streams are Poisson; the fixed inter-arrival mode applies to the live part.

Cost: about 80 s of CPU for the whole table (three designs x five rows x two localities):
about 35 s for ``today`` (rows whose shared history streams must be generated: 1,000 and
10,000 tenants), the rest playing the live reads through the production objects; simulations
run in ``--jobs`` worker processes (default: one per CPU).

Adding a design: subclass ``Design`` (writer and reader container factories, optionally a
fleet-wide object shared by reader containers, whether writer keys are per tenant, the
longest span of one writer key, the ``Settings`` it pins, its ``history``) and add it to
``DESIGNS``; rows are printed side by side for every design. Pool-scoped writer keys use
``PoolHistory`` (keys named per container and period) instead of per-tenant streams.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import hmac
import json
import math
import os
import random
import sys
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, TextIO, cast

from chalicelib.config import Settings
from chalicelib.crypto import (
    DATA_KEY_BYTES,
    KIND_POOL,
    DataKeySource,
    Envelope,
    KeyUnwrapper,
    Opener,
    RecordRef,
    SealedFields,
    Sealer,
    encryption_context,
)
from chalicelib.fleet import FleetKeyTable, FleetSealingKeys
from chalicelib.keys import (
    DEFAULT_MAX_CONTEXTS,
    CachingDataKeys,
    CachingUnwrapper,
    FreshDataKeys,
    KmsDecryptor,
    KmsEncryptor,
    KmsMacKey,
)

ROOT = Path(__file__).resolve().parents[1]
ZIPF_S = 1.1
FIELD = "name"
PLAINTEXT = b"x"
FAKE_KEY_ARN = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"
FAKE_MAC_KEY_ARN = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-0000000000ac"
_FAKE_MAC_SECRET = b"workload-model fleet HMAC key"  # one HMAC key: every fake derives the same sealing keys
# The fleet key table reads wall-clock time (positive, epochs of one day): it sees the simulated
# clock plus this base, a whole number of days, so simulated time 0 starts a fleet epoch.
FLEET_CLOCK_BASE_S = 20_000 * 86_400

# --------------------------------------------------------------------------- fakes


class SimClock:
    """The simulated clock the caches read (``time.monotonic``'s stand-in)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingBytes:
    """Deterministic "random" data keys: cheap, distinct, reproducible from a namespace."""

    def __init__(self, namespace: bytes) -> None:
        self._namespace = namespace
        self.count = 0

    def __call__(self, size: int) -> bytes:
        self.count += 1
        digest = hashlib.sha256(self._namespace + self.count.to_bytes(8, "big")).digest()
        return (digest * (size // len(digest) + 1))[:size]


def _context_digest(context: Mapping[str, str]) -> bytes:
    return hashlib.blake2b(repr(sorted(context.items())).encode(), digest_size=8).digest()


class FakeKmsClient:
    """A boto3-shaped KMS client: Encrypt returns a unique blob per call, calls are counted.

    The blob carries the plaintext, so Decrypt needs no table (history can hold millions of
    keys); Decrypt checks the encryption context as KMS does. ``namespace`` makes blobs of
    different fakes distinct; the same calls on a fake of the same namespace give the same
    blobs (history replays rely on that).
    """

    def __init__(self, namespace: bytes = b"live") -> None:
        self.namespace = namespace
        self.encrypt_calls = 0
        self.decrypt_calls = 0
        self.mac_calls = 0

    def encrypt(self, *, KeyId: str, Plaintext: bytes, EncryptionContext: Mapping[str, str]) -> dict[str, Any]:
        self.encrypt_calls += 1
        tag = self.namespace + b"#" + str(self.encrypt_calls).encode()
        blob = Plaintext + _context_digest(EncryptionContext) + tag
        return {"CiphertextBlob": blob, "KeyId": FAKE_KEY_ARN}

    def decrypt(self, *, KeyId: str, CiphertextBlob: bytes, EncryptionContext: Mapping[str, str]) -> dict[str, Any]:
        self.decrypt_calls += 1
        plaintext, digest = CiphertextBlob[:DATA_KEY_BYTES], CiphertextBlob[DATA_KEY_BYTES : DATA_KEY_BYTES + 8]
        if digest != _context_digest(EncryptionContext):
            raise ValueError("fake KMS: encryption context does not match")
        return {"Plaintext": plaintext, "KeyId": FAKE_KEY_ARN}

    def generate_mac(self, *, KeyId: str, MacAlgorithm: str, Message: bytes) -> dict[str, Any]:
        """HMAC-SHA-256 under one fixed secret (the fleet's HMAC key), counted."""
        self.mac_calls += 1
        if MacAlgorithm != "HMAC_SHA_256":
            raise ValueError("fake KMS: HMAC_SHA_256 only")
        return {"Mac": hmac.new(_FAKE_MAC_SECRET, Message, hashlib.sha256).digest(), "KeyId": KeyId}


class FakeFleetTable:
    """The reader fleet's key table (``chalicelib.fleet.FleetTable``) in memory, DynamoDB calls counted."""

    def __init__(self) -> None:
        self.items: dict[bytes, dict[str, Any]] = {}
        self.gets = 0
        self.puts = 0

    def get(self, entry_id: bytes) -> dict[str, Any] | None:
        self.gets += 1
        item = self.items.get(entry_id)
        return dict(item) if item is not None else None

    def put(self, entry_id: bytes, entry: dict[str, Any]) -> None:
        self.puts += 1
        self.items[entry_id] = dict(entry)


class _Switch:
    """Delegates to ``target``, which can be re-pointed (primes a live writer with a history key)."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)


# --------------------------------------------------------------------------- production adapter


class Production:
    """The one place that builds and calls production objects (re-point it after refactors).

    Built as ``chalicelib/api/__init__.py`` builds them, at the bounds of ``Settings``
    (config defaults unless overridden), with the simulated clock and counting fakes injected.
    A design pins the settings that define it (``Design.pins``); explicit overrides given
    here win over the pins (tests turn caches off or shrink bounds that way).
    """

    def __init__(self, **bounds: Any) -> None:
        """``bounds``: ``Settings`` fields to override (e.g. ``writer_key_cache_seconds=0``)."""
        self.overrides: dict[str, Any] = dict(bounds)
        self.writer_settings = replace(Settings(role="writer"), **self.overrides)
        self.reader_settings = replace(Settings(role="reader"), **self.overrides)

    def pinned(self, **pins: Any) -> Production:
        """These settings, with ``pins`` under the explicit overrides."""
        return Production(**{**pins, **self.overrides})

    def sealer(self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]) -> Sealer:
        """As ``keys.writer_data_keys`` (which takes no clock or random source): cached unless a bound is 0."""
        settings = self.writer_settings
        data_keys: DataKeySource = FreshDataKeys(KmsEncryptor(kms, settings.kms_key_id), random_bytes)
        if settings.writer_key_cache_max_records > 0 and settings.writer_key_cache_seconds > 0:
            data_keys = CachingDataKeys(
                data_keys,
                max_records=settings.writer_key_cache_max_records,
                max_age_seconds=settings.writer_key_cache_seconds,
                clock=clock,
            )
        return Sealer(data_keys, settings.app_name, scope=settings.key_scope)

    def fleet_enabled(self) -> bool:
        """As the reader stage decides: a fleet MAC key and a non-zero entry lifetime."""
        return bool(self.reader_settings.fleet_mac_key_id and self.reader_settings.fleet_key_lifetime_seconds)

    def fleet_key_table(
        self, kms: Any, clock: Callable[[], float], table: FakeFleetTable, random_bytes: Callable[[int], bytes]
    ) -> FleetKeyTable:
        """The reader's ``FleetKeyTable`` over KMS Decrypt, its sealing keys derived by GenerateMac."""
        settings = self.reader_settings
        sealing = FleetSealingKeys(KmsMacKey(kms, settings.fleet_mac_key_id))
        return FleetKeyTable(
            KmsDecryptor(kms, settings.kms_key_id), table, sealing,
            lifetime_seconds=settings.fleet_key_lifetime_seconds,
            clock=lambda: clock() + FLEET_CLOCK_BASE_S, random_bytes=random_bytes,
        )

    def opener(self, kms: FakeKmsClient, clock: SimClock, fleet: Fleet | None = None) -> Opener:
        """As ``keys.reader_unwrapper`` (which takes no clock): cached unless a bound is 0; in
        front of the shared fleet key table when the settings turn it on and ``fleet`` is given."""
        settings = self.reader_settings
        unwrapper: KeyUnwrapper = KmsDecryptor(kms, settings.kms_key_id)
        if fleet is not None and self.fleet_enabled():
            unwrapper = self.fleet_key_table(kms, clock, fleet.table, fleet.nonces)
        if settings.reader_key_cache_max_entries > 0 and settings.reader_key_cache_seconds > 0:
            unwrapper = CachingUnwrapper(
                unwrapper,
                max_entries=settings.reader_key_cache_max_entries,
                max_age_seconds=settings.reader_key_cache_seconds,
                clock=clock,
            )
        return Opener(unwrapper, settings.app_name)

    @staticmethod
    def envelope(sealer: Sealer, tenant: str) -> Envelope:
        """What the writer does per record to get its data key (cache or one Encrypt)."""
        return sealer.envelope(tenant)

    @staticmethod
    def seal(envelope: Envelope, tenant: str, record_id: str) -> SealedFields:
        return envelope.seal(RecordRef(tenant, "person", record_id), {FIELD: PLAINTEXT})

    @staticmethod
    def open(opener: Opener, tenant: str, record_id: str, sealed: SealedFields) -> bytes:
        ref = RecordRef(tenant, "person", record_id)
        return opener.for_request().open(ref, sealed.blobs, sealed.slots(), (FIELD,))[FIELD]

    def writer_key_age_s(self) -> float:
        return float(self.writer_settings.writer_key_cache_seconds)

    def writer_max_contexts(self) -> int:
        return DEFAULT_MAX_CONTEXTS

    def writer_max_records(self) -> int:
        return self.writer_settings.writer_key_cache_max_records

    def fleet_lifetime_s(self) -> float:
        return float(self.reader_settings.fleet_key_lifetime_seconds)

    def pool_context(self) -> dict[str, str]:
        """The KMS encryption context of pool data keys (no tenant in it)."""
        return encryption_context(self.reader_settings.app_name, "", KIND_POOL)


@dataclass
class Fleet:
    """What reader containers of one simulation share: the fleet key table (and its nonce source)."""

    table: FakeFleetTable
    nonces: Callable[[int], bytes]


# --------------------------------------------------------------------------- designs


class WriterContainer(Protocol):
    def write(self, tenant: str) -> Envelope: ...


class ReaderContainer(Protocol):
    def read(self, tenant: str, record_id: str, sealed: SealedFields) -> bytes: ...


class Design:
    """How containers get and keep keys. Subclass to compare another design."""

    name = "abstract"
    #: True when a writer's key choice for a record depends only on that tenant's earlier
    #: records in the same container (history is then generated per tenant stream).
    keys_per_tenant = True
    #: ``Settings`` fields that define the design (explicit ``Production`` overrides win).
    pins: Mapping[str, Any] = {}

    def __init__(self, production: Production) -> None:
        self.production = production.pinned(**self.pins)

    def fleet(self, kms: FakeKmsClient, clock: SimClock) -> Fleet | None:
        """State shared by all reader containers of one simulation (none by default)."""
        return None

    def history(self, scenario: Scenario, cumulative: list[float], names: list[str]) -> History | PoolHistory:
        """Where the keys of records written before time 0 come from."""
        return History(scenario, self, cumulative, names)

    def writer(self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]) -> WriterContainer:
        raise NotImplementedError

    def reader(self, kms: FakeKmsClient, clock: SimClock, fleet: Any) -> ReaderContainer:
        raise NotImplementedError

    def check(self, scenario: Scenario) -> None:
        """Refuse scenarios where the history shortcut's assumptions do not hold."""

    def max_key_span_s(self) -> float:
        """Longest time between the first and last record sealed under one writer key."""
        return math.inf

    def expected_write_calls(self, scenario: Scenario) -> float | None:
        """Encrypts per write by a closed form, when the design has one (checks the simulation)."""
        return None


class _SealerWriter:
    def __init__(self, production: Production, sealer: Sealer) -> None:
        self._production = production
        self._sealer = sealer

    def write(self, tenant: str) -> Envelope:
        return self._production.envelope(self._sealer, tenant)


class _OpenerReader:
    def __init__(self, production: Production, opener: Opener) -> None:
        self._production = production
        self._opener = opener

    def read(self, tenant: str, record_id: str, sealed: SealedFields) -> bytes:
        return self._production.open(self._opener, tenant, record_id, sealed)


class TodayDesign(Design):
    """Before issue 14: a per-tenant writer key cache and a reader key cache per container.

    Pinned, so that it keeps meaning the design before the change whatever the defaults
    of ``chalicelib/config.py`` become: tenant scope, writer keys 300 s / 1000 records,
    reader cache 300 s / 1000 entries, no fleet key table.
    """

    name = "today"
    pins = {
        "key_scope": "tenant",
        "writer_key_cache_seconds": 300,
        "writer_key_cache_max_records": 1000,
        "reader_key_cache_seconds": 300,
        "reader_key_cache_max_entries": 1000,
        "fleet_mac_key_id": "",
        "fleet_key_lifetime_seconds": 0,
    }

    def writer(self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]) -> WriterContainer:
        return _SealerWriter(self.production, self.production.sealer(kms, clock, random_bytes))

    def reader(self, kms: FakeKmsClient, clock: SimClock, fleet: Any) -> ReaderContainer:
        return _OpenerReader(self.production, self.production.opener(kms, clock))

    def max_key_span_s(self) -> float:
        return self.production.writer_key_age_s()

    def check(self, scenario: Scenario) -> None:
        per_container = scenario.write_rate / scenario.writers * self.production.writer_key_age_s()
        if scenario.tenants > self.production.writer_max_contexts() and per_container * 1.5 > (
            self.production.writer_max_contexts()
        ):
            raise ValueError(
                f"{scenario.name}: writer LRU could evict live entries; per-tenant history streams would not be exact"
            )


class PoolDesign(Design):
    """Pool scope (v2): one data key per warm writer container and period, any tenant; readers
    as before (a key cache per container, no fleet table). Shows what the writer half gives."""

    name = "pool"
    keys_per_tenant = False
    pins = {"key_scope": "pool", "fleet_mac_key_id": ""}

    def writer(self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]) -> WriterContainer:
        return _SealerWriter(self.production, self.production.sealer(kms, clock, random_bytes))

    def reader(self, kms: FakeKmsClient, clock: SimClock, fleet: Any) -> ReaderContainer:
        return _OpenerReader(self.production, self.production.opener(kms, clock, fleet))

    def history(self, scenario: Scenario, cumulative: list[float], names: list[str]) -> PoolHistory:
        return PoolHistory(scenario, self, names)

    def max_key_span_s(self) -> float:
        return self.production.writer_key_age_s()

    def expected_write_calls(self, scenario: Scenario) -> float | None:
        """Keys per container incarnation (exponential lifetime, rate mu) are sum over k >= 1 of
        P(t(k) < T) = E[exp(-mu t(k))] = q**k exp(-mu A (k - 1)), q = r / (r + mu); per write,
        mu E[keys] / r. Without churn, one key per A + 1/r seconds."""
        r, age = scenario.write_rate / scenario.writers, self.production.writer_key_age_s()
        if not scenario.churn_mean_s:
            return 1 / (r * age + 1)
        mu = 1 / scenario.churn_mean_s
        q = r / (r + mu)
        return mu * q / (1 - q * math.exp(-mu * age)) / r

    def check(self, scenario: Scenario) -> None:
        per_key = scenario.write_rate / scenario.writers * self.production.writer_key_age_s()
        if per_key * 1.5 > self.production.writer_max_records():
            raise ValueError(
                f"{scenario.name}: the writer key's record bound could end a key before its age; "
                "the pool history model (keys change by age and churn only) would not be exact"
            )


class PoolFleetDesign(PoolDesign):
    """Pool scope plus the reader fleet key table (v2 as built): every reader container's
    ``CachingUnwrapper`` sits in front of ONE shared ``FleetKeyTable`` store, in front of KMS."""

    name = "pool+fleet"
    pins = {"key_scope": "pool", "fleet_mac_key_id": FAKE_MAC_KEY_ARN}

    def fleet(self, kms: FakeKmsClient, clock: SimClock) -> Fleet | None:
        return Fleet(FakeFleetTable(), CountingBytes(b"fleet-nonces")) if self.production.fleet_enabled() else None


DESIGNS: dict[str, Callable[[Production], Design]] = {
    "today": TodayDesign,
    "pool": PoolDesign,
    "pool+fleet": PoolFleetDesign,
}


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    tenants: int
    writers: int
    readers: int
    write_rate: float
    read_rate: float
    history_s: float
    locality: str  # "uniform" | "recent"
    recent_mean_s: float = 600.0
    churn_mean_s: float | None = 3600.0
    arrivals: str = "poisson"  # "poisson" | "fixed"
    warmup_s: float = 1800.0
    read_warmup_s: float = 600.0
    measure_s: float = 600.0
    seed: int = 14


@dataclass
class Result:
    scenario: str
    design: str
    locality: str
    writes: int
    reads: int
    encrypt_calls: int
    decrypt_calls: int
    history_reads: int
    history_streams: int
    history_writes_fed: int
    seconds: float
    mac_calls: int = 0  # kms:GenerateMac (fleet sealing keys), counted as read calls
    fleet_gets: int = 0  # fleet key table GetItem
    fleet_puts: int = 0  # fleet key table PutItem
    fleet_entries_at_start: int = 0  # entries the warm-up left in the fleet table at time 0

    @property
    def write_calls_per_record(self) -> float:
        """KMS calls (Encrypt) per record written."""
        return self.encrypt_calls / self.writes if self.writes else 0.0

    @property
    def read_calls_per_record(self) -> float:
        """KMS calls (Decrypt + GenerateMac) per record read."""
        return (self.decrypt_calls + self.mac_calls) / self.reads if self.reads else 0.0

    def per_read(self, count: int) -> float:
        return count / self.reads if self.reads else 0.0


def _zipf_cumulative(tenants: int) -> list[float]:
    return list(accumulate(k ** -ZIPF_S for k in range(1, tenants + 1)))


def tenant_name(rank: int) -> str:
    return f"t{rank:05d}"


class _Stream:
    """One history stream, fed lazily in time order through its own production writer objects.

    Keeps the runs of consecutive records that share a wrapped key: first and last record
    time, record count, and the fake KMS / key counters when the run's key was made.
    """

    def __init__(self, history: History, stream: tuple[int, int, int]) -> None:
        slot, inc, rank = stream
        sc = history.scenario
        starts = history.boundaries[slot]
        self.begin = starts[inc]
        self.end = starts[inc + 1] if inc + 1 < len(starts) else 0.0
        self.rank = rank
        self.namespace = f"h{slot}.{inc}.{rank}".encode()
        share = history.weight(rank) if rank >= 0 else 1.0
        self._rate = sc.write_rate / sc.writers * share
        self._rng = random.Random(f"{sc.seed}/stream/{slot}/{inc}/{rank}")
        self._history = history
        self.kms = FakeKmsClient(self.namespace)
        self.keys = CountingBytes(self.namespace)
        self.clock = SimClock(self.begin)
        self._writer = history.design.writer(self.kms, self.clock, self.keys)
        self._next = self.begin + self._rng.expovariate(self._rate)
        self.firsts: list[float] = []
        self.lasts: list[float] = []
        self.counts: list[int] = []
        self.made_at: list[tuple[int, int]] = []  # (kms calls, keys drawn) before the run's key
        self.envelopes: list[Envelope] = []

    def feed_past(self, u: float) -> None:
        """Write this stream's records up to and including the first one after ``u``."""
        while self._next < self.end and (not self.lasts or self.lasts[-1] <= u):
            t = self._next
            rank = self.rank if self.rank >= 0 else self._history.draw(self._rng)
            self.clock.now = t
            before = (self.kms.encrypt_calls, self.keys.count)
            envelope = self._writer.write(self._history.names[rank])
            self._history.writes_fed += 1
            if self.envelopes and envelope.wrapped_key.blob == self.envelopes[-1].wrapped_key.blob:
                self.lasts[-1] = t
                self.counts[-1] += 1
            else:
                self.firsts.append(t)
                self.lasts.append(t)
                self.counts.append(1)
                self.made_at.append(before)
                self.envelopes.append(envelope)
            self._next = t + self._rng.expovariate(self._rate)


def _incarnation_starts(scenario: Scenario) -> list[list[float]]:
    """Per writer slot, the ascending start times (all < 0) of its container incarnations in history."""
    rng = random.Random(f"{scenario.seed}/churn-history")
    boundaries: list[list[float]] = []
    for _ in range(scenario.writers):
        starts = []
        t = 0.0
        while t > -scenario.history_s:
            t = t - rng.expovariate(1 / scenario.churn_mean_s) if scenario.churn_mean_s else -math.inf
            starts.append(max(t, -scenario.history_s))
        boundaries.append(starts[::-1])
    return boundaries


class History:
    """Keys of history records (before time 0), generated per stream on demand (see module doc)."""

    _MEMO_LIMIT = 4096
    #: Reads of one stream close in time must be told apart (``Simulation._shared_history_keys``).
    needs_sharing = True

    def __init__(self, scenario: Scenario, design: Design, cumulative: list[float], names: list[str]) -> None:
        self.scenario = scenario
        self.design = design
        self.names = names
        self._cumulative = cumulative
        self._total_weight = cumulative[-1]
        self.boundaries = _incarnation_starts(scenario)  # every writer container is replaced at time 0
        self._memo: OrderedDict[tuple[int, int, int], _Stream] = OrderedDict()
        self.streams = 0
        self.writes_fed = 0

    def warm(self, fleet: Fleet | None) -> None:
        """Nothing to warm: this design has no state shared by reader containers."""

    def live_writer(
        self, slot: int, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]
    ) -> WriterContainer:
        """Writer container ``slot`` at time 0: a fresh one (the fleet restarts at 0, see module doc)."""
        return self.design.writer(kms, clock, random_bytes)

    def weight(self, rank: int) -> float:
        return float((rank + 1) ** -ZIPF_S) / self._total_weight

    def draw(self, rng: random.Random) -> int:
        return bisect.bisect_left(self._cumulative, rng.random() * self._total_weight)

    def stream_of(self, slot: int, rank: int, u: float) -> tuple[int, int, int]:
        """The stream a record of tenant ``rank`` written at ``u`` < 0 in writer ``slot`` belongs to."""
        inc = bisect.bisect_right(self.boundaries[slot], u) - 1
        return (slot, inc, rank if self.design.keys_per_tenant else -1)

    def record(self, slot: int, rank: int, u: float, *, alone: bool = False) -> Envelope:
        """The envelope a record of tenant ``rank`` written at ``u`` < 0 in writer ``slot`` was sealed under.

        ``alone``: no other read of the simulation reads this stream, so this record's key
        cannot be shared with any other read's; only its being distinct matters, and a
        fresh key made by the stream's first write stands in for it (see module doc).
        """
        key = self.stream_of(slot, rank, u)
        if alone:
            namespace = f"a{key}/{u!r}".encode()
            writer = self.design.writer(FakeKmsClient(namespace), SimClock(u), CountingBytes(namespace))
            return writer.write(self.names[rank])
        stream = self._memo.get(key)
        if stream is None:
            # Deterministic: a stream evicted here and rebuilt later makes the same blobs.
            stream = self._memo[key] = _Stream(self, key)
            self.streams += 1
            if len(self._memo) > self._MEMO_LIMIT:
                self._memo.popitem(last=False)
        else:
            self._memo.move_to_end(key)
        stream.feed_past(u)
        i = bisect.bisect_right(stream.firsts, u) - 1
        if i >= 0 and u <= stream.lasts[i]:
            return stream.envelopes[i]
        return self._write_between(stream, i, rank, u)

    def _write_between(self, stream: _Stream, run: int, rank: int, u: float) -> Envelope:
        """Write a record at ``u``, after run ``run`` (-1: none) and before the next one.

        The writer's state there is run ``run``'s key with its use count: rebuilt by replaying
        that run's records (at its first record's time) through fresh production writer objects
        whose fake KMS and key counters stand where they stood, so the key's blob is the same.
        """
        kms, keys = FakeKmsClient(stream.namespace), CountingBytes(stream.namespace)
        clock = SimClock(stream.begin)
        if run >= 0:
            kms.encrypt_calls, keys.count = stream.made_at[run]
        writer = self.design.writer(kms, clock, keys)
        if run >= 0:
            clock.now = stream.firsts[run]
            tenant = stream.envelopes[run].customer_id
            for _ in range(stream.counts[run]):
                writer.write(tenant)
            self.writes_fed += stream.counts[run]
        kms.namespace = stream.namespace + b"/v" + repr(u).encode()  # a key made for this record only
        clock.now = u
        return writer.write(self.names[rank])


class PoolHistory:
    """Keys of history records for pool-scoped writer keys: named per (writer container, period).

    A pool key depends only on the writer container and the time, not on the tenant, so no
    stream is fed: per writer slot, container incarnations (as ``History``'s) and within each
    the production cache's key chain, drawn directly. ``CachingDataKeys`` makes a key at the
    first write of a fresh container and at the first write once the key is ``A`` seconds old
    (``A`` = ``writer_key_cache_seconds``); with Poisson writes of rate ``r`` per container the
    key starts are ``t1 = b + Exp(r)``, ``t(k+1) = t(k) + A + Exp(r)`` (memoryless), and key k
    seals exactly the records in ``[t(k), min(t(k) + A, next incarnation))``. Exact, except:

    - the record bound (``writer_key_cache_max_records``, 100,000) is never reached:
      ``PoolDesign.check`` refuses scenarios where a key could see 2/3 of it in its age
      (at 1 write/s per container a key sees about 3,600 records);
    - a read's record is an extra point at its time u (see module doc). If u falls in a
      gap (after key k's age, before the container's next write, which makes key k+1:
      mean 1/r seconds), that record would itself have made the next key, at u instead
      of t(k+1), shared with the records after it; it is given key k+1 (so key k+1 stands
      for the records from the end of key k). After the last key of an incarnation the
      record gets a key of its own. Both shift a key boundary by the gap (about 1 s per
      hour at the goal row's rates).

    Unlike ``History``, writer containers are *not* restarted at 0: the incarnation current
    at 0 continues into the live simulation (its residual lifetime is the live churn's
    exponential draw, exact for memoryless lifetimes), and ``live_writer`` primes each live
    writer with the history key current at 0 (same data key and wrapped blob, made at that
    key's start time), so the writer side is in its steady state from time 0 (pool keys live
    an hour: a fleet-wide restart at 0 would make every key change at about the same time).
    The primed key's use count starts at 1 instead of the history's count: harmless, as the
    record bound cannot bind (above).

    ``warm`` fills the fleet key table as it stands at time 0 in the steady state (see there).
    """

    needs_sharing = False
    #: Keys whose chance of a read in the last fleet lifetime is below this are not warmed.
    _NEGLIGIBLE = 1e-9

    def __init__(self, scenario: Scenario, design: PoolDesign, names: list[str]) -> None:
        self.scenario = scenario
        self.design = design
        self.names = names
        self.streams = 0
        self.writes_fed = 0
        self.boundaries = _incarnation_starts(scenario)
        self.age = design.production.writer_key_age_s()
        rate = scenario.write_rate / scenario.writers
        self.made: list[list[float]] = []  # per slot: when each key was made (ascending)
        self.starts: list[list[float]] = []  # per slot: first record time a key stands for (see above)
        self.ends: list[list[float]] = []  # per slot: end of the records each key seals (before 0)
        self.current: list[int | None] = []  # per slot: index of the key the container holds at 0
        for slot, incarnations in enumerate(self.boundaries):
            rng = random.Random(f"{scenario.seed}/pool-keys/{slot}")
            made: list[float] = []
            starts: list[float] = []
            ends: list[float] = []
            current = None
            for inc, begin in enumerate(incarnations):
                end = incarnations[inc + 1] if inc + 1 < len(incarnations) else 0.0
                t, since = begin + rng.expovariate(rate), begin
                current = None
                while t < end:
                    made.append(t)
                    starts.append(since)
                    ends.append(since := min(t + self.age, end))
                    current = len(made) - 1
                    t += self.age + rng.expovariate(rate)
            self.made.append(made)
            self.starts.append(starts)
            self.ends.append(ends)
            self.current.append(current)

    def keys(self) -> int:
        return sum(len(starts) for starts in self.starts)

    def _writer(self, namespace: bytes, at: float) -> WriterContainer:
        return self.design.writer(FakeKmsClient(namespace), SimClock(at), CountingBytes(namespace))

    def _key_envelope(self, slot: int, index: int, tenant: str) -> Envelope:
        """Key ``index`` of writer slot ``slot``, as its production writer made it, for ``tenant``."""
        return self._writer(f"p{slot}.{index}".encode(), self.made[slot][index]).write(tenant)

    def record(self, slot: int, rank: int, u: float, *, alone: bool = False) -> Envelope:
        """The envelope a record of tenant ``rank`` written at ``u`` < 0 in writer ``slot`` was sealed under."""
        index = bisect.bisect_right(self.starts[slot], u) - 1
        if index >= 0 and u < self.ends[slot][index]:
            return self._key_envelope(slot, index, self.names[rank])
        return self._writer(f"p{slot}/gap/{u!r}".encode(), u).write(self.names[rank])

    def live_writer(
        self, slot: int, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]
    ) -> WriterContainer:
        """Writer container ``slot`` at time 0, holding the history key current at 0 (if any)."""
        index = self.current[slot]
        if index is None:
            return self.design.writer(kms, clock, random_bytes)
        namespace = f"p{slot}.{index}".encode()
        kms_switch, bytes_switch = _Switch(FakeKmsClient(namespace)), _Switch(CountingBytes(namespace))
        writer = self.design.writer(cast(FakeKmsClient, kms_switch), clock, bytes_switch)  # delegates to one
        now, clock.now = clock.now, self.made[slot][index]
        writer.write(self.names[0])  # the key made at its start time, outside the live counts
        clock.now = now
        kms_switch.target, bytes_switch.target = kms, random_bytes
        return writer

    # ------------------------------------------------------------------ fleet table warm-up

    def warm(self, fleet: Fleet | None) -> None:
        """Fill the fleet key table as it stands at time 0 in the steady state.

        A pool key's entry is (re)stored by the first read of that key that finds no valid
        entry, and lives ``L`` (``fleet_key_lifetime_seconds``) from then; so per key the
        stores form a renewal chain: first read after the key's first record, then the first
        read at least ``L`` later, and so on. Reads of key k (records ``[c, e)`` of slot s)
        at time t < 0 are a Poisson process of intensity ``read_rate / writers x P(u in [c,
        min(e, t)])`` (u the read's record time by the locality: uniform over ``history_s`` or
        exponential age), and its next point after any time has a closed form (uniform) or
        is found by bisection of the integrated intensity (recent-heavy ramp). Walking the
        chain from the key's first record (the table has no entry before it: exact, no
        warm-up bias; starting from an empty table at -L or -2L would lock every entry's
        phase) gives the last store before 0; if it is within ``L`` of 0, the entry is stored
        through a production ``FleetKeyTable`` at that time (same table, same HMAC key, a
        KMS fake whose calls are not counted). Approximated: the stores depend on reads, not
        on which reads the container caches absorb (a read served by a container cache after
        the entry expired would not restore it; container entries live 300 s, fleet entries a
        day), and keys of records older than ``history_s`` are not in the table (no live read
        reaches them). tests/unit/test_workload.py checks this against a live fleet.
        """
        if fleet is None:
            return
        sc, production = self.scenario, self.design.production
        lifetime = production.fleet_lifetime_s()
        clock = SimClock(0.0)
        kms = FakeKmsClient(b"fleet-warm-up")
        table = production.fleet_key_table(kms, clock, fleet.table, fleet.nonces)
        context = production.pool_context()
        rng = random.Random(f"{sc.seed}/fleet-warm-up")
        per_slot = sc.read_rate / sc.writers
        for slot, (starts, ends) in enumerate(zip(self.starts, self.ends)):
            for index, (c, e) in enumerate(zip(starts, ends)):
                reads = _KeyReads(sc, per_slot, c, e)
                if reads.integral(max(c, -lifetime), 0.0) < self._NEGLIGIBLE:
                    continue
                last, t = None, reads.next_after(c, rng.expovariate(1.0))
                while t < 0.0:
                    last = t
                    t = reads.next_after(t + lifetime, rng.expovariate(1.0))
                if last is not None and last + lifetime > 0.0:
                    clock.now = last
                    table.unwrap(self._key_envelope(slot, index, self.names[0]).wrapped_key.blob, context)


class _KeyReads:
    """Reads at time t < 0 of the records ``[c, e)`` of one writer slot: intensity and next read.

    Uniform over ``H``: ``R (min(e, t) - c)^+ / H`` (every record since -H is readable at t < 0).
    Recent-heavy, mean age m: ``R Z (exp(-(t - min(e, t)) / m) - exp(-(t - c) / m))``, with
    ``Z = 1 / (1 - exp(-H / m))`` (ages beyond H are redrawn).
    """

    def __init__(self, scenario: Scenario, per_slot: float, c: float, e: float) -> None:
        self.c, self.e, self.w = c, e, e - c
        self.uniform = scenario.locality == "uniform"
        self.m = scenario.recent_mean_s
        if self.uniform:
            self.rate = per_slot / scenario.history_s
        else:
            self.rate = per_slot / -math.expm1(-scenario.history_s / self.m)
            self.g = -math.expm1(-self.w / self.m)

    def _ramp(self, t: float) -> float:
        """Integrated intensity from c to t <= e."""
        x = t - self.c
        if self.uniform:
            return self.rate * x * x / 2
        return self.rate * (x + self.m * math.expm1(-x / self.m))

    def _tail(self, s: float) -> float:
        """Integrated intensity from s >= e to infinity (recent-heavy)."""
        return self.rate * self.g * self.m * math.exp(-(s - self.e) / self.m)

    def integral(self, s: float, t: float) -> float:
        """Integrated intensity over [s, t] (c <= s <= t)."""
        total = 0.0
        if s < self.e:
            total += self._ramp(min(t, self.e)) - self._ramp(s)
            s = self.e
        if t > s:
            total += self.rate * self.w * (t - s) if self.uniform else self._tail(s) - self._tail(t)
        return total

    def next_after(self, s: float, draw: float) -> float:
        """The first read after ``s`` (>= c) whose integrated intensity from ``s`` is ``draw`` (an Exp(1))."""
        if self.w <= 0:
            return math.inf
        if s < self.e:
            need = self._ramp(self.e) - self._ramp(s)
            if draw <= need:
                target = self._ramp(s) + draw
                if self.uniform:
                    return self.c + math.sqrt(2 * target / self.rate)
                low, high = s, self.e
                for _ in range(60):
                    middle = (low + high) / 2
                    low, high = (middle, high) if self._ramp(middle) < target else (low, middle)
                return high
            draw -= need
            s = self.e
        if self.uniform:
            return s + draw / (self.rate * self.w)
        remaining = self._tail(s)
        if draw >= remaining:
            return math.inf
        return self.e - self.m * math.log(math.exp(-(s - self.e) / self.m) - draw / (self.rate * self.g * self.m))


@dataclass(frozen=True)
class _Target:
    """What one read asks for: a live record (``index``) or a history record (slot, rank, u)."""

    index: int = -1
    slot: int = 0
    rank: int = 0
    u: float = 0.0


class Simulation:
    """One scenario under one design: live simulation plus on-demand history.

    The schedule (arrival times, containers, tenants, read targets, churn) is drawn first,
    from seeded RNGs; then it is played in time order through the production objects.
    """

    def __init__(self, scenario: Scenario, design: Design) -> None:
        if scenario.locality not in ("uniform", "recent") or scenario.arrivals not in ("poisson", "fixed"):
            raise ValueError("locality must be uniform|recent, arrivals poisson|fixed")
        design.check(scenario)
        self.scenario = scenario
        self.design = design
        self._cumulative = _zipf_cumulative(scenario.tenants)

    def _rank(self, rng: random.Random) -> int:
        return bisect.bisect_left(self._cumulative, rng.random() * self._cumulative[-1])

    def _arrivals(self, rng: random.Random, rate: float, start: float, end: float) -> list[float]:
        if self.scenario.arrivals == "fixed":
            return [start + k / rate for k in range(math.ceil((end - start) * rate))]
        out, t = [], start + rng.expovariate(rate)
        while t < end:
            out.append(t)
            t += rng.expovariate(rate)
        return out

    def _churn(self, rng: random.Random, slots: int, start: float, end: float, kind: int) -> list[tuple[float, int, int]]:
        out: list[tuple[float, int, int]] = []
        if not self.scenario.churn_mean_s:
            return out
        for slot in range(slots):
            t = start + rng.expovariate(1 / self.scenario.churn_mean_s)
            while t < end:
                out.append((t, kind, slot))
                t += rng.expovariate(1 / self.scenario.churn_mean_s)
        return out

    def _target(self, rng: random.Random, now: float, write_times: list[float]) -> _Target:
        """The record a read at ``now`` asks for (writes at ``now`` come first)."""
        sc = self.scenario
        written = bisect.bisect_right(write_times, now)
        oldest = now - sc.history_s
        if sc.locality == "uniform":
            first_live = bisect.bisect_left(write_times, oldest, 0, written)
            live = written - first_live
            expected_history = sc.write_rate * max(0.0, -oldest)
            if rng.random() * (live + expected_history) < live:
                return _Target(index=first_live + rng.randrange(live))
            u = rng.uniform(oldest, 0.0)
        else:
            while True:
                u = now - rng.expovariate(1 / sc.recent_mean_s)
                if u >= oldest:
                    break
            if u >= 0:  # the latest record written at or before u (or the first one)
                return _Target(index=max(0, bisect.bisect_right(write_times, u, 0, written) - 1))
        return _Target(slot=rng.randrange(sc.writers), rank=self._rank(rng), u=u)

    def _shared_history_keys(self, history: History, targets: list[_Target]) -> set[_Target]:
        """History reads that might share a key with another read: same stream, close in time.

        A writer key serves records written within ``design.max_key_span_s`` of each other
        only, so reads further apart (or in other streams) can never share one.
        """
        span = self.design.max_key_span_s()
        keyed = sorted((history.stream_of(t.slot, t.rank, t.u), t.u, t) for t in targets)
        shared: set[_Target] = set()
        for (stream_a, u_a, a), (stream_b, u_b, b) in pairwise(keyed):
            if stream_a == stream_b and u_b - u_a <= span:
                shared.update((a, b))
        return shared

    def run(self) -> Result:
        started = time.perf_counter()
        sc, design = self.scenario, self.design
        measure_from, end = sc.warmup_s, sc.warmup_s + sc.measure_s
        read_from = max(0.0, measure_from - sc.read_warmup_s)
        names = [tenant_name(rank) for rank in range(sc.tenants)]
        history = design.history(sc, self._cumulative, names)

        # The schedule.
        rng = random.Random(f"{sc.seed}/writes")
        write_times = self._arrivals(rng, sc.write_rate, 0.0, end)
        write_to = [(rng.randrange(sc.writers), self._rank(rng)) for _ in write_times]
        rng = random.Random(f"{sc.seed}/reads")
        read_times = self._arrivals(rng, sc.read_rate, read_from, end)
        read_to = [(rng.randrange(sc.readers), self._target(rng, t, write_times)) for t in read_times]
        rng = random.Random(f"{sc.seed}/churn")
        events = [(t, 0, i) for i, t in enumerate(write_times)] + [(t, 1, i) for i, t in enumerate(read_times)]
        events += self._churn(rng, sc.writers, 0.0, end, 2) + self._churn(rng, sc.readers, read_from, end, 3)
        events.sort()
        shared: set[_Target] = set()
        if isinstance(history, History):
            shared = self._shared_history_keys(history, [t for _, t in read_to if t.index < 0])

        # Played through the production objects.
        clock = SimClock(0.0)
        kms = FakeKmsClient(b"live")
        keys = CountingBytes(b"live")
        fleet = design.fleet(kms, clock)
        history.warm(fleet)
        warmed = len(fleet.table.items) if fleet is not None else 0
        writers = [history.live_writer(slot, kms, clock, keys) for slot in range(sc.writers)]
        readers = [design.reader(kms, clock, fleet) for _ in range(sc.readers)]
        envelopes: list[Envelope] = []
        writes = reads = history_reads = 0

        def counters() -> tuple[int, int, int, int, int]:
            table = fleet.table if fleet is not None else FakeFleetTable()
            return kms.encrypt_calls, kms.decrypt_calls, kms.mac_calls, table.gets, table.puts

        start: tuple[int, int, int, int, int] | None = None
        for now, kind, i in events:
            if start is None and now >= measure_from:
                start = counters()
            measured = now >= measure_from
            clock.now = now
            if kind == 0:  # write
                slot, rank = write_to[i]
                envelopes.append(writers[slot].write(names[rank]))
                writes += measured
            elif kind == 1:  # read
                slot, target = read_to[i]
                if target.index >= 0:
                    rank, record_id = write_to[target.index][1], f"l{target.index}"
                    envelope = envelopes[target.index]
                else:
                    rank, record_id = target.rank, f"h{target.slot}/{target.u!r}"
                    alone = target not in shared
                    envelope = history.record(target.slot, target.rank, target.u, alone=alone)
                    history_reads += measured
                sealed = Production.seal(envelope, names[rank], record_id)
                if readers[slot].read(names[rank], record_id, sealed) != PLAINTEXT:
                    raise AssertionError("reader opened another value than was sealed")
                reads += measured
            elif kind == 2:  # writer container replaced: empty caches
                writers[i] = design.writer(kms, clock, keys)
            else:  # reader container replaced
                readers[i] = design.reader(kms, clock, fleet)
        end_counts = counters()
        encrypts, decrypts, macs, gets, puts = (b - a for a, b in zip(start or end_counts, end_counts))
        return Result(
            scenario=sc.name,
            design=design.name,
            locality=sc.locality,
            writes=writes,
            reads=reads,
            encrypt_calls=encrypts,
            decrypt_calls=decrypts,
            history_reads=history_reads,
            history_streams=history.streams,
            history_writes_fed=history.writes_fed,
            seconds=round(time.perf_counter() - started, 2),
            mac_calls=macs,
            fleet_gets=gets,
            fleet_puts=puts,
            fleet_entries_at_start=warmed,
        )


# --------------------------------------------------------------------------- rows and output

HOUR = 3600.0
DAY = 24 * HOUR

# (label, tenants, writers, readers, writes/s, reads/s, uniform history, issue 14's numbers for today's caches)
ROWS: tuple[tuple[str, int, int, int, float, float, float, tuple[float, float, float] | None], ...] = (
    ("1 tenant", 1, 1, 1, 10, 10, 6 * HOUR, (0.001, 0.07, 0.013)),
    ("100 tenants", 100, 10, 10, 10, 10, 6 * HOUR, (0.18, 0.97, 0.75)),
    ("1,000 tenants", 1000, 10, 10, 50, 50, 6 * HOUR, (0.20, 0.94, 0.66)),
    ("10,000 tenants", 10000, 50, 50, 50, 50, 6 * HOUR, (0.48, 1.00, 0.96)),
    ("goal: 10,000 tenants, 30 days", 10000, 50, 50, 50, 50, 30 * DAY, None),
)


def scenarios(label: str, row: tuple[Any, ...], **overrides: Any) -> list[Scenario]:
    _label, tenants, writers, readers, write_rate, read_rate, history_s, _issue = row
    return [
        replace(
            Scenario(label, tenants, writers, readers, write_rate, read_rate, history_s, locality), **overrides
        )
        for locality in ("uniform", "recent")
    ]


def _history_label(seconds: float) -> str:
    return f"{seconds / DAY:g} d" if seconds >= DAY else f"{seconds / HOUR:g} h"


def _kms_cell(run: Mapping[str, Any]) -> str:
    """KMS calls per record read: the total, split into Decrypt + GenerateMac when there are MAC calls."""
    total = run["read_calls_per_record"]
    if not run["mac_calls"]:
        return f"{total:.3g}"
    return f"{total:.3g} ({run['decrypt_calls'] / run['reads']:.3g} + {run['mac_calls'] / run['reads']:.2g})"


def _write_cell(row: Mapping[str, Any]) -> str:
    expected = row.get("write_expected")
    return f"{row['write']:.3g}" + ("" if expected is None else f" (model {expected:.2g})")


def _fleet_cell(row: Mapping[str, Any]) -> str:
    if not any(run["fleet_gets"] for run in row["runs"]):
        return "-"
    return "; ".join(f"{run['fleet_gets'] / run['reads']:.2f} / {run['fleet_puts'] / run['reads']:.3f}" for run in row["runs"])


def table(report: list[dict[str, Any]]) -> str:
    lines = [
        (
            "| tenants | writer/reader containers | writes/s | reads/s | design | write (Encrypt) "
            "| read, uniform over history (Decrypt + GenerateMac) | read, recent-heavy (mean 10 min) "
            "| fleet table get / put per read (uniform; recent) | issue 14 (write / uniform / recent) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report:
        issue = row["issue"]
        uniform, recent = row["runs"]
        lines.append(
            f"| {row['tenants']:,} | {row['writers']} / {row['readers']} | {row['write_rate']:g} | {row['read_rate']:g} "
            f"| {row['design']} | {_write_cell(row)} | {_kms_cell(uniform)} ({_history_label(row['history_s'])}) "
            f"| {_kms_cell(recent)} | {_fleet_cell(row)} "
            f"| {' / '.join(f'{v:g}' for v in issue) if issue else '-'} |"
        )
    return "\n".join(lines)


GOAL_ROW = "goal: 10,000 tenants, 30 days"
GOAL_WRITE = 0.01  # issue 14 item 4: KMS calls per write ...
GOAL_READ = 0.05  # ... and per read (uniform over 30 days)
SINGLE_TENANT_ROW = "1 tenant"


def verdicts(report: list[dict[str, Any]]) -> list[str]:
    """Issue 14 item 4, per design: the goal row's bounds, and the single tenant no worse than today."""
    by = {(row["row"], row["design"]): row for row in report}
    lines = []
    for (label, design), row in by.items():
        if label == GOAL_ROW:
            met = row["write"] <= GOAL_WRITE and row["read_uniform"] <= GOAL_READ
            lines.append(
                f"{design}: goal row write {row['write']:.3g} (<= {GOAL_WRITE:g}), read {row['read_uniform']:.3g} "
                f"(<= {GOAL_READ:g}): {'met' if met else 'NOT met'}"
            )
    for (label, design), row in by.items():
        today = by.get((label, "today"))
        if label == SINGLE_TENANT_ROW and design != "today" and today is not None:
            worse = [k for k in ("write", "read_uniform", "read_recent") if row[k] > today[k]]
            lines.append(
                f"{design}: single tenant {row['write']:.3g} / {row['read_uniform']:.3g} / {row['read_recent']:.3g} "
                f"vs today {today['write']:.3g} / {today['read_uniform']:.3g} / {today['read_recent']:.3g}: "
                + (f"worse on {', '.join(worse)}" if worse else "no worse")
            )
    return lines


def _simulate(job: tuple[Scenario, str, dict[str, Any]]) -> Result:
    scenario, name, bounds = job
    return Simulation(scenario, DESIGNS[name](Production(**bounds))).run()


def run_table(
    designs: list[str], production: Production, progress: TextIO = sys.stdout, jobs: int = 1, **overrides: Any
) -> list[dict[str, Any]]:
    """Every row under every design, both localities; ``jobs`` > 1 runs simulations in worker
    processes (each simulation is deterministic on its own, so the results do not change)."""
    plan = [(row, name) for row in ROWS for name in designs]
    work = [(sc, name, production.overrides) for row, name in plan for sc in scenarios(row[0], row, **overrides)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_simulate, work))
    else:
        results = [_simulate(job) for job in work]
    report = []
    for k, (row, name) in enumerate(plan):
        uniform, recent = results[2 * k], results[2 * k + 1]
        expected = DESIGNS[name](production).expected_write_calls(work[2 * k][0])
        report.append({
            "row": row[0],
            "design": name,
            "tenants": row[1],
            "writers": row[2],
            "readers": row[3],
            "write_rate": row[4],
            "read_rate": row[5],
            "history_s": row[6],
            "write": round(uniform.write_calls_per_record, 5),
            "write_expected": None if expected is None else round(expected, 7),
            "read_uniform": round(uniform.read_calls_per_record, 5),
            "read_recent": round(recent.read_calls_per_record, 5),
            "issue": row[7] if name == "today" else None,
            "runs": [
                {**asdict(r), "write_calls_per_record": r.write_calls_per_record,
                 "read_calls_per_record": r.read_calls_per_record}
                for r in (uniform, recent)
            ],
        })
        print(f"  {row[0]} [{name}]: {uniform.seconds + recent.seconds:.1f} s", file=progress, flush=True)
    return report


def settings_line(overrides: Mapping[str, Any], elapsed: float) -> str:
    return (
        f"{elapsed:.0f} s; Zipf s={ZIPF_S}, churn mean {overrides['churn_mean_s'] or 0:g} s, measured "
        f"{overrides['measure_s']:g} s after {overrides['warmup_s']:g} s warm-up, seed {overrides['seed']}. "
        "today: tenant-scoped keys, writer 300 s / 1000 records, reader cache 300 s / 1000 entries; "
        "pool: pool-scoped writer keys at the config defaults, reader caches per container; pool+fleet: "
        "pool plus the shared fleet key table (GenerateMac counted as a read's KMS call)."
    )


def report_workload(
    out: Path, designs: list[str] | None = None, progress: TextIO = sys.stdout, jobs: int = 1, **overrides: Any
) -> str:
    """Run the table (``Scenario`` defaults unless overridden), write ``out``/workload.json, return the text."""
    settings = {
        "seed": Scenario.seed, "measure_s": Scenario.measure_s, "warmup_s": Scenario.warmup_s,
        "churn_mean_s": Scenario.churn_mean_s, "arrivals": Scenario.arrivals, **overrides,
    }
    started = time.perf_counter()
    report = run_table(designs or list(DESIGNS), Production(), progress, jobs, **settings)
    elapsed = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    document = {"settings": settings, "zipf_s": ZIPF_S, "rows": report, "verdicts": verdicts(report)}
    (out / "workload.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return "\n\n".join([table(report), "\n".join(verdicts(report)), settings_line(settings, elapsed)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where workload.json goes")
    parser.add_argument("--design", action="append", choices=list(DESIGNS), help="default: all designs")
    parser.add_argument("--seed", type=int, default=Scenario.seed)
    parser.add_argument("--measure-s", type=float, default=Scenario.measure_s)
    parser.add_argument("--warmup-s", type=float, default=Scenario.warmup_s)
    parser.add_argument("--churn-mean-s", type=float, default=Scenario.churn_mean_s,
                        help="mean container lifetime; 0 = no churn")
    parser.add_argument("--arrivals", choices=("poisson", "fixed"), default=Scenario.arrivals)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    args = parser.parse_args(argv)
    print("Workload model (KMS calls per record), simulated:", flush=True)
    text = report_workload(
        args.out, args.design, seed=args.seed, measure_s=args.measure_s, warmup_s=args.warmup_s,
        churn_mean_s=args.churn_mean_s or None, arrivals=args.arrivals, jobs=args.jobs,
    )
    print()
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
