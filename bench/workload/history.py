"""Keys of history records (written before time 0) for per-tenant writer keys: ``History``.

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
"""

from __future__ import annotations

import bisect
import math
import random
from collections import OrderedDict
from collections.abc import Callable

from bench.workload.containers import WriterContainer, WriterDesign
from bench.workload.fakes import CountingBytes, FakeKmsClient, SimClock
from bench.workload.production import Fleet
from bench.workload.scenario import ZIPF_S, Scenario
from chalicelib.envelope.format import Envelope


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


def incarnation_starts(scenario: Scenario) -> list[list[float]]:
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


def fresh_writer(design: WriterDesign, namespace: bytes, at: float) -> WriterContainer:
    """A fresh writer container at time ``at`` over its own fake KMS and key source of ``namespace``."""
    return design.writer(FakeKmsClient(namespace), SimClock(at), CountingBytes(namespace))


class History:
    """Keys of history records (before time 0), generated per stream on demand (see module doc)."""

    _MEMO_LIMIT = 4096
    #: Reads of one stream close in time must be told apart (``Simulation._shared_history_keys``).
    needs_sharing = True

    def __init__(self, scenario: Scenario, design: WriterDesign, cumulative: list[float], names: list[str]) -> None:
        self.scenario = scenario
        self.design = design
        self.names = names
        self._cumulative = cumulative
        self._total_weight = cumulative[-1]
        self.boundaries = incarnation_starts(scenario)  # every writer container is replaced at time 0
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
            return fresh_writer(self.design, f"a{key}/{u!r}".encode(), u).write(self.names[rank])
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
