"""The simulation: one scenario under one design, live part played through the production objects."""

from __future__ import annotations

import bisect
import math
import random
import time
from dataclasses import dataclass
from itertools import pairwise

from bench.workload.designs import Design
from bench.workload.fakes import CountingBytes, FakeFleetTable, FakeKmsClient, SimClock
from bench.workload.history import History
from bench.workload.production import PLAINTEXT, Production
from bench.workload.scenario import Result, Scenario, tenant_name, zipf_cumulative
from chalicelib.envelope.format import Envelope


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
        self._cumulative = zipf_cumulative(scenario.tenants)

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

    def _churn(
        self, rng: random.Random, slots: int, start: float, end: float, kind: int
    ) -> list[tuple[float, int, int]]:
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
        key_table = design.production.key_table
        writers = [history.live_writer(slot, kms, clock, keys) for slot in range(sc.writers)]
        readers = [design.reader(kms, clock, fleet) for _ in range(sc.readers)]
        envelopes: list[Envelope] = []
        writes = reads = history_reads = 0

        def counters() -> tuple[float, ...]:
            table = fleet.table if fleet is not None else FakeFleetTable()
            return (
                kms.encrypt_calls,
                kms.decrypt_calls,
                kms.mac_calls,
                table.gets,
                table.puts,
                table.queries,
                key_table.gets,
                table.read_units + key_table.read_units,
            )

        start: tuple[float, ...] | None = None
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
        deltas = [b - a for a, b in zip(start or end_counts, end_counts, strict=True)]
        encrypts, decrypts, macs, gets, puts, queries, key_gets = (int(d) for d in deltas[:7])
        read_units = deltas[7]
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
            fleet_queries=queries,
            key_table_gets=key_gets,
            key_read_units=round(read_units, 2),
            fleet_entries_at_start=warmed,
        )
