"""Keys of history records for pool-scoped writer keys (``PoolHistory``)."""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from typing import cast

from bench.workload.containers import WriterContainer, WriterDesign
from bench.workload.fakes import CountingBytes, FakeKmsClient, SimClock, _Switch
from bench.workload.fleet_warmup import warm_fleet
from bench.workload.history import fresh_writer, incarnation_starts
from bench.workload.production import Fleet
from bench.workload.scenario import Scenario
from chalicelib.envelope.format import Envelope


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
    - a read's record is an extra point at its time u (see ``bench/workload/history.py``). If u falls in a
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

    def __init__(self, scenario: Scenario, design: WriterDesign, names: list[str]) -> None:
        self.scenario = scenario
        self.design = design
        self.names = names
        self.streams = 0
        self.writes_fed = 0
        self.boundaries = incarnation_starts(scenario)
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

    def key_envelope(self, slot: int, index: int, tenant: str) -> Envelope:
        """Key ``index`` of writer slot ``slot``, as its production writer made it, for ``tenant``."""
        return fresh_writer(self.design, f"p{slot}.{index}".encode(), self.made[slot][index]).write(tenant)

    def record(self, slot: int, rank: int, u: float, *, alone: bool = False) -> Envelope:
        """The envelope a record of tenant ``rank`` written at ``u`` < 0 in writer ``slot`` was sealed under."""
        index = bisect.bisect_right(self.starts[slot], u) - 1
        if index >= 0 and u < self.ends[slot][index]:
            return self.key_envelope(slot, index, self.names[rank])
        return fresh_writer(self.design, f"p{slot}/gap/{u!r}".encode(), u).write(self.names[rank])

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

    def warm(self, fleet: Fleet | None) -> None:
        """Fill the fleet key table as it stands at time 0 in the steady state (``fleet_warmup.warm_fleet``)."""
        warm_fleet(self, fleet)
