"""The fleet key table as it stands at time 0 in the steady state (``PoolHistory.warm``)."""

from __future__ import annotations

import math
import random
from typing import Protocol

from bench.workload.containers import WriterDesign
from bench.workload.fakes import FakeKmsClient, SimClock
from bench.workload.production import Fleet
from bench.workload.scenario import Scenario
from chalicelib.envelope.format import Envelope


class PoolKeys(Protocol):
    """The pool keys of the history (``pool_history.PoolHistory``): per writer slot, the span of
    record times each key stands for, and the key itself as its writer made it."""

    scenario: Scenario
    design: WriterDesign
    names: list[str]
    starts: list[list[float]]
    ends: list[list[float]]

    def key_envelope(self, slot: int, index: int, tenant: str) -> Envelope: ...


#: Keys whose chance of a read in the last fleet lifetime is below this are not warmed.
NEGLIGIBLE = 1e-9


def warm_fleet(history: PoolKeys, fleet: Fleet | None) -> None:
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
    through a production ``FleetBuckets`` at that time (same table, same HMAC key, a
    KMS fake whose calls are not counted; the table's counters are read from time 0 on).
    Approximated: the stores depend on reads, not on which reads the container caches absorb
    (a read served by a container's copy after the entry expired would not restore it: a
    container keeps a key no longer than its entry, so only refreshes are shifted), and
    keys of records older than ``history_s`` are not in the table (no live read reaches
    them). tests/unit/test_workload.py checks this against a live fleet.
    """
    if fleet is None:
        return
    sc, production = history.scenario, history.design.production
    lifetime = production.fleet_lifetime_s()
    clock = SimClock(0.0)
    kms = FakeKmsClient(b"fleet-warm-up")
    table = production.resolver(kms, clock, fleet)
    context = production.pool_context()
    rng = random.Random(f"{sc.seed}/fleet-warm-up")
    per_slot = sc.read_rate / sc.writers
    for slot, (starts, ends) in enumerate(zip(history.starts, history.ends, strict=True)):
        for index, (c, e) in enumerate(zip(starts, ends, strict=True)):
            reads = _KeyReads(sc, per_slot, c, e)
            if reads.integral(max(c, -lifetime), 0.0) < NEGLIGIBLE:
                continue
            last, t = None, reads.next_after(c, rng.expovariate(1.0))
            while t < 0.0:
                last = t
                t = reads.next_after(t + lifetime, rng.expovariate(1.0))
            if last is not None and last + lifetime > 0.0:
                clock.now = last
                table.resolve(history.key_envelope(slot, index, history.names[0]).wrapped_key.ref, context)


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
