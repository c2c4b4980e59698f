"""Scenarios (one load to simulate), results, and the tenants' Zipf popularity."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

ZIPF_S = 1.1


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
    fleet_gets: int = 0  # fleet table GetItem (one key)
    fleet_puts: int = 0  # fleet table PutItem
    fleet_queries: int = 0  # fleet table Query (a day of pool keys)
    key_table_gets: int = 0  # key table GetItem (a data key's wrapped form: format v3)
    key_read_units: float = 0.0  # DynamoDB read units of those key lookups (fleet and key table)
    fleet_entries_at_start: int = 0  # entries the warm-up left in the fleet table at time 0

    @property
    def write_calls_per_record(self) -> float:
        """KMS calls (Encrypt) per record written."""
        return self.encrypt_calls / self.writes if self.writes else 0.0

    @property
    def read_calls_per_record(self) -> float:
        """KMS calls (Decrypt + GenerateMac) per record read."""
        return (self.decrypt_calls + self.mac_calls) / self.reads if self.reads else 0.0

    @property
    def key_fetches_per_read(self) -> float:
        """What a read pays besides its record: KMS calls plus fleet and key-table requests."""
        fetches = self.decrypt_calls + self.mac_calls + self.fleet_gets + self.fleet_queries + self.key_table_gets
        return fetches / self.reads if self.reads else 0.0

    def per_read(self, count: int | float) -> float:
        return count / self.reads if self.reads else 0.0


def zipf_cumulative(tenants: int) -> list[float]:
    return list(accumulate(k**-ZIPF_S for k in range(1, tenants + 1)))


def tenant_name(rank: int) -> str:
    return f"t{rank:05d}"
