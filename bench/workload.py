"""Workload model: KMS calls per record written and read under a realistic multi-tenant load.

    python -m bench.workload [--out docs] [--seed 14] [--measure-s 600] [--churn-mean-s 3600]

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
- Measured: Encrypt calls / records written and Decrypt calls / records read, in a window
  of ``measure_s`` after a warm-up (``warmup_s`` of writes, the last ``read_warmup_s`` of
  it with reads too; today's caches forget everything older than 300 s).

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

Cost: about 35 s of CPU for the whole table (two columns x five rows), most of it in rows
whose shared history streams must be generated (1,000 and 10,000 tenants).

Adding a design: subclass ``Design`` (writer and reader container factories, optionally a
fleet-wide object shared by reader containers, whether writer keys are per tenant, the
longest span of one writer key) and add it to ``DESIGNS``; rows are printed side by side
for every design. A design whose writer keys are not per tenant makes one history stream
per container incarnation (all tenants); at 1 write/s per container that is slow to feed
for shared reads, so such a design may want a cheaper ``History`` of its own (e.g. keys
that change at fixed periods can be named without feeding a stream).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import math
import random
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from chalicelib.config import Settings
from chalicelib.crypto import (
    DATA_KEY_BYTES,
    DataKeySource,
    Envelope,
    KeyUnwrapper,
    Opener,
    RecordRef,
    SealedFields,
    Sealer,
)
from chalicelib.keys import (
    DEFAULT_MAX_CONTEXTS,
    CachingDataKeys,
    CachingUnwrapper,
    FreshDataKeys,
    KmsDecryptor,
    KmsEncryptor,
)

ROOT = Path(__file__).resolve().parents[1]
ZIPF_S = 1.1
FIELD = "name"
PLAINTEXT = b"x"
FAKE_KEY_ARN = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"

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


# --------------------------------------------------------------------------- production adapter


class Production:
    """The one place that builds and calls production objects (re-point it after refactors).

    Built as ``chalicelib/api/__init__.py`` builds them, at the bounds of ``Settings``
    (config defaults unless overridden), with the simulated clock and counting fakes injected.
    """

    def __init__(self, **bounds: int) -> None:
        """``bounds``: ``Settings`` key cache fields to override (e.g. ``writer_key_cache_seconds=0``)."""
        overrides: dict[str, Any] = dict(bounds)
        self.writer_settings = replace(Settings(role="writer"), **overrides)
        self.reader_settings = replace(Settings(role="reader"), **overrides)

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
        return Sealer(data_keys, settings.app_name)

    def opener(self, kms: FakeKmsClient, clock: SimClock) -> Opener:
        """As ``keys.reader_unwrapper`` (which takes no clock): cached unless a bound is 0."""
        settings = self.reader_settings
        unwrapper: KeyUnwrapper = KmsDecryptor(kms, settings.kms_key_id)
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

    def __init__(self, production: Production) -> None:
        self.production = production

    def fleet(self, kms: FakeKmsClient, clock: SimClock) -> Any:
        """State shared by all reader containers of one simulation (none by default)."""
        return None

    def writer(self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]) -> WriterContainer:
        raise NotImplementedError

    def reader(self, kms: FakeKmsClient, clock: SimClock, fleet: Any) -> ReaderContainer:
        raise NotImplementedError

    def check(self, scenario: Scenario) -> None:
        """Refuse scenarios where the history shortcut's assumptions do not hold."""

    def max_key_span_s(self) -> float:
        """Longest time between the first and last record sealed under one writer key."""
        return math.inf


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
    """Shipped today: a per-tenant writer key cache and a reader key cache per container."""

    name = "today"

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


DESIGNS: dict[str, Callable[[Production], Design]] = {"today": TodayDesign}


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

    @property
    def write_calls_per_record(self) -> float:
        return self.encrypt_calls / self.writes if self.writes else 0.0

    @property
    def read_calls_per_record(self) -> float:
        return self.decrypt_calls / self.reads if self.reads else 0.0


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


class History:
    """Keys of history records (before time 0), generated per stream on demand (see module doc)."""

    _MEMO_LIMIT = 4096

    def __init__(self, scenario: Scenario, design: Design, cumulative: list[float], names: list[str]) -> None:
        self.scenario = scenario
        self.design = design
        self.names = names
        self._cumulative = cumulative
        self._total_weight = cumulative[-1]
        rng = random.Random(f"{scenario.seed}/churn-history")
        self.boundaries: list[list[float]] = []  # per slot, ascending incarnation starts, all < 0
        for _ in range(scenario.writers):
            starts = []
            t = 0.0
            while t > -scenario.history_s:
                t = t - rng.expovariate(1 / scenario.churn_mean_s) if scenario.churn_mean_s else -math.inf
                starts.append(max(t, -scenario.history_s))
            self.boundaries.append(starts[::-1])
        self._memo: OrderedDict[tuple[int, int, int], _Stream] = OrderedDict()
        self.streams = 0
        self.writes_fed = 0

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
        history = History(sc, design, self._cumulative, names)

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
        shared = self._shared_history_keys(history, [t for _, t in read_to if t.index < 0])

        # Played through the production objects.
        clock = SimClock(0.0)
        kms = FakeKmsClient(b"live")
        keys = CountingBytes(b"live")
        fleet = design.fleet(kms, clock)
        writers = [design.writer(kms, clock, keys) for _ in range(sc.writers)]
        readers = [design.reader(kms, clock, fleet) for _ in range(sc.readers)]
        envelopes: list[Envelope] = []
        writes = reads = history_reads = 0
        enc0 = dec0 = -1
        for now, kind, i in events:
            if enc0 < 0 and now >= measure_from:
                enc0, dec0 = kms.encrypt_calls, kms.decrypt_calls
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
        if enc0 < 0:
            enc0, dec0 = kms.encrypt_calls, kms.decrypt_calls
        return Result(
            scenario=sc.name,
            design=design.name,
            locality=sc.locality,
            writes=writes,
            reads=reads,
            encrypt_calls=kms.encrypt_calls - enc0,
            decrypt_calls=kms.decrypt_calls - dec0,
            history_reads=history_reads,
            history_streams=history.streams,
            history_writes_fed=history.writes_fed,
            seconds=round(time.perf_counter() - started, 2),
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


def table(report: list[dict[str, Any]]) -> str:
    lines = [
        (
            "| tenants | writer/reader containers | writes/s | reads/s | design | write | read (uniform over history) "
            "| read (recent-heavy, mean 10 min) | issue 14 (write / uniform / recent) |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report:
        issue = row["issue"]
        lines.append(
            f"| {row['tenants']:,} | {row['writers']} / {row['readers']} | {row['write_rate']:g} | {row['read_rate']:g} "
            f"| {row['design']} | {row['write']:.3g} | {row['read_uniform']:.3g} ({_history_label(row['history_s'])}) "
            f"| {row['read_recent']:.3g} | {' / '.join(f'{v:g}' for v in issue) if issue else '-'} |"
        )
    return "\n".join(lines)


def run_table(designs: list[str], production: Production, **overrides: Any) -> list[dict[str, Any]]:
    report = []
    for row in ROWS:
        for name in designs:
            design = DESIGNS[name](production)
            uniform, recent = (Simulation(sc, design).run() for sc in scenarios(row[0], row, **overrides))
            report.append({
                "row": row[0],
                "design": name,
                "tenants": row[1],
                "writers": row[2],
                "readers": row[3],
                "write_rate": row[4],
                "read_rate": row[5],
                "history_s": row[6],
                "write": round(uniform.write_calls_per_record, 4),
                "read_uniform": round(uniform.read_calls_per_record, 4),
                "read_recent": round(recent.read_calls_per_record, 4),
                "issue": row[7] if name == "today" else None,
                "runs": [
                    {**asdict(r), "write_calls_per_record": r.write_calls_per_record,
                     "read_calls_per_record": r.read_calls_per_record}
                    for r in (uniform, recent)
                ],
            })
            print(f"  {row[0]} [{name}]: {uniform.seconds + recent.seconds:.1f} s", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where workload.json goes")
    parser.add_argument("--design", action="append", choices=sorted(DESIGNS), help="default: all designs")
    parser.add_argument("--seed", type=int, default=Scenario.seed)
    parser.add_argument("--measure-s", type=float, default=Scenario.measure_s)
    parser.add_argument("--warmup-s", type=float, default=Scenario.warmup_s)
    parser.add_argument("--churn-mean-s", type=float, default=Scenario.churn_mean_s,
                        help="mean container lifetime; 0 = no churn")
    parser.add_argument("--arrivals", choices=("poisson", "fixed"), default=Scenario.arrivals)
    args = parser.parse_args(argv)
    overrides = {
        "seed": args.seed,
        "measure_s": args.measure_s,
        "warmup_s": args.warmup_s,
        "churn_mean_s": args.churn_mean_s or None,
        "arrivals": args.arrivals,
    }
    started = time.perf_counter()
    print("Workload model (KMS calls per record), simulated:", flush=True)
    report = run_table(args.design or sorted(DESIGNS), Production(), **overrides)
    elapsed = time.perf_counter() - started
    print()
    print(table(report))
    print(f"\n{elapsed:.0f} s; Zipf s={ZIPF_S}, churn mean {args.churn_mean_s:g} s, "
          f"measured {args.measure_s:g} s after {args.warmup_s:g} s warm-up, seed {args.seed}")
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"settings": overrides, "zipf_s": ZIPF_S, "rows": report}
    (args.out / "workload.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
