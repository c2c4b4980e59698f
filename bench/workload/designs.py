"""Designs: how writer and reader containers get and keep keys (``DESIGNS``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from bench.workload.containers import ReaderContainer, WriterContainer
from bench.workload.fakes import FAKE_MAC_KEY_ARN, CountingBytes, FakeFleetTable, FakeKmsClient, SimClock
from bench.workload.history import History
from bench.workload.pool_history import PoolHistory
from bench.workload.production import Fleet, Production
from bench.workload.scenario import Scenario
from chalicelib.envelope.format import Envelope, Opener, SealedFields, Sealer

__all__ = [
    "DESIGNS",
    "SHIPPED_DESIGN",
    "Design",
    "PoolDesign",
    "PoolFleetDesign",
    "ReaderContainer",
    "TodayDesign",
    "WriterContainer",
]


class Design:
    """How containers get and keep keys. Subclass to compare another design."""

    name = "abstract"
    #: True when a writer's key choice for a record depends only on that tenant's earlier
    #: records in the same container (history is then generated per tenant stream).
    keys_per_tenant = True
    #: ``Settings`` fields that define the design (explicit ``Production`` overrides win).
    pins: ClassVar[Mapping[str, Any]] = {}

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
    def __init__(self, production: Production, sealer: Sealer, masked: Sealer | None = None) -> None:
        self._production = production
        self._sealer = sealer
        self._masked = masked

    def write(self, tenant: str) -> Envelope:
        """A person write takes the full view's data key and, with the masked view, that view's
        too (its Encrypts count; readers open the full view, so the full envelope is returned)."""
        if self._masked is not None:
            self._production.envelope(self._masked, tenant)
        return self._production.envelope(self._sealer, tenant)


class _OpenerReader:
    def __init__(self, production: Production, opener: Opener) -> None:
        self._production = production
        self._opener = opener

    def read(self, tenant: str, record_id: str, sealed: SealedFields) -> bytes:
        return self._production.open(self._opener, tenant, record_id, sealed)


class ProductionDesign(Design):
    """Containers are the production ``Sealer`` / ``Opener`` at the design's pinned settings
    (the reader's in front of the shared fleet key table when the design has one)."""

    #: The writer also seals masked projections under a second data key (docs/masked.md).
    masked_view = True

    def writer(self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]) -> WriterContainer:
        full, masked = self.production.sealers(kms, clock, random_bytes)
        return _SealerWriter(self.production, full, masked if self.masked_view else None)

    def reader(self, kms: FakeKmsClient, clock: SimClock, fleet: Any) -> ReaderContainer:
        return _OpenerReader(self.production, self.production.opener(kms, clock, fleet))

    def max_key_span_s(self) -> float:
        return self.production.writer_key_age_s()


class TodayDesign(ProductionDesign):
    """Before issue 14: a per-tenant writer key cache and a reader key cache per container.

    Pinned, so that it keeps meaning the design before the change whatever the defaults
    of ``chalicelib/support/config.py`` become: tenant scope, writer keys 300 s / 1000 records,
    reader cache 300 s / 1000 entries, no fleet key table.
    """

    name = "today"
    pins: ClassVar[Mapping[str, Any]] = {
        "key_scope": "tenant",
        "writer_key_cache_seconds": 300,
        "writer_key_cache_max_records": 1000,
        "reader_key_cache_seconds": 300,
        "reader_key_cache_max_entries": 1000,
        "fleet_mac_key_id": "",
        "fleet_key_lifetime_seconds": 0,
    }
    masked_view = False  # before issue 13: no masked view

    def check(self, scenario: Scenario) -> None:
        per_container = scenario.write_rate / scenario.writers * self.production.writer_key_age_s()
        if scenario.tenants > self.production.writer_max_contexts() and per_container * 1.5 > (
            self.production.writer_max_contexts()
        ):
            raise ValueError(
                f"{scenario.name}: writer LRU could evict live entries; per-tenant history streams would not be exact"
            )


class PoolDesign(ProductionDesign):
    """Pool scope (v2): one data key per warm writer container and period, any tenant; readers
    as before (a key cache per container, no fleet table). Shows what the writer half gives."""

    name = "pool"
    keys_per_tenant = False
    pins: ClassVar[Mapping[str, Any]] = {"key_scope": "pool", "fleet_mac_key_id": ""}

    def history(self, scenario: Scenario, cumulative: list[float], names: list[str]) -> PoolHistory:
        return PoolHistory(scenario, self, names)

    def expected_write_calls(self, scenario: Scenario) -> float | None:
        """Keys per container incarnation (exponential lifetime, rate mu) are sum over k >= 1 of
        P(t(k) < T) = E[exp(-mu t(k))] = q**k exp(-mu A (k - 1)), q = r / (r + mu); per write,
        mu E[keys] / r. Without churn, one key per A + 1/r seconds. Times the views the writer
        seals (full and masked: two keys with the same bounds, made and renewed together)."""
        views = 2 if self.masked_view else 1
        r, age = scenario.write_rate / scenario.writers, self.production.writer_key_age_s()
        if not scenario.churn_mean_s:
            return views / (r * age + 1)
        mu = 1 / scenario.churn_mean_s
        q = r / (r + mu)
        return views * mu * q / (1 - q * math.exp(-mu * age)) / r

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
    pins: ClassVar[Mapping[str, Any]] = {"key_scope": "pool", "fleet_mac_key_id": FAKE_MAC_KEY_ARN}

    def fleet(self, kms: FakeKmsClient, clock: SimClock) -> Fleet | None:
        return Fleet(FakeFleetTable(), CountingBytes(b"fleet-nonces")) if self.production.fleet_enabled() else None


DESIGNS: dict[str, Callable[[Production], Design]] = {
    "today": TodayDesign,
    "pool": PoolDesign,
    "pool+fleet": PoolFleetDesign,
}
#: The design the stages ship with (the all-in cost table, bench/cost.py, prices its goal row).
SHIPPED_DESIGN = "pool+fleet"
