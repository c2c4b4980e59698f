"""What a simulation needs of a design and its containers, as protocols (``designs`` implements
them; ``history``, ``pool_history`` and ``fleet_warmup`` use them without importing ``designs``,
so the modules form no import cycle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bench.workload.fakes import FakeKmsClient, SimClock
from bench.workload.production import Production
from chalicelib.envelope.format import Envelope, SealedFields


class WriterContainer(Protocol):
    def write(self, tenant: str) -> Envelope: ...


class ReaderContainer(Protocol):
    def read(self, tenant: str, record_id: str, sealed: SealedFields) -> bytes: ...


class WriterDesign(Protocol):
    """The part of a design (``designs.Design``) that writes history records."""

    #: the production adapter at the design's pinned settings
    production: Production
    #: whether a writer's key for a record depends only on that tenant's earlier records in the container
    keys_per_tenant: bool

    def writer(self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]) -> WriterContainer: ...
