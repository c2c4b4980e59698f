"""Timing one approach: writes, then reads in another order, every read checked; one result row."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.approaches import FIELDS, Approach
from bench.aws import DynamoMeter, KmsMeter, StoredItems, binary_bytes, ddb_client, item_size, tenant_items
from bench.prices import DYNAMODB_PER_READ_UNIT, DYNAMODB_PER_WRITE_UNIT, per_million_records
from chalicelib.domain.validation import encode_field
from chalicelib.support.config import KEYS_SUFFIX

BATCH = 100  # ids per multi-get request


def plaintext_bytes(person: dict[str, Any]) -> int:
    return sum(len(encode_field(person[name])) for name in FIELDS)


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``q`` % of the samples at or below it."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Phase:
    kms_calls: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    write_units: float = 0.0
    read_units: float = 0.0
    dynamodb_seconds: float = 0.0
    key_table_write_units: float = 0.0


def _key_table(table: str) -> bool:
    return table.endswith(KEYS_SUFFIX)


def _timed(meter: KmsMeter, ddb: DynamoMeter, steps: list[tuple[int, Callable[[], None]]]) -> Phase:
    """Run ``steps`` (records covered, action); per-record latency is step time / records covered.
    Write units: the records' own table, and (format v3) the key table's apart: one small item per
    data key the writer makes (once per warm container, key period and view)."""
    before, in_ddb = meter.total(), ddb.seconds
    units = (ddb.write_units_where(lambda t: not _key_table(t)), ddb.read_units, ddb.write_units_where(_key_table))
    latencies: list[float] = []
    started = time.perf_counter()
    for covered, step in steps:
        t0 = time.perf_counter()
        step()
        latencies += [(time.perf_counter() - t0) * 1000 / covered] * covered
    seconds = time.perf_counter() - started
    return Phase(
        meter.total() - before,
        seconds,
        latencies,
        ddb.write_units_where(lambda t: not _key_table(t)) - units[0],
        ddb.read_units - units[1],
        ddb.seconds - in_ddb,
        ddb.write_units_where(_key_table) - units[2],
    )


def run_approach(
    cls: type[Approach], resources: dict[str, str], data: list[dict[str, Any]], latency_s: float, read_order: list[int]
) -> dict[str, Any]:
    meter, ddb_meter = KmsMeter(latency_s), DynamoMeter(StoredItems())
    approach = cls(resources, meter, ddb_meter)
    n = len(data)

    def write(i: int) -> Callable[[], None]:
        return lambda: approach.write(i, data[i])

    def read(i: int) -> Callable[[], None]:
        def step() -> None:
            if approach.read(i) != data[i]:
                raise RuntimeError(f"{cls.name}: record {i} did not round-trip")

        return step

    def read_batch(indexes: list[int]) -> Callable[[], None]:
        def step() -> None:
            if approach.read_batch(indexes) != [data[i] for i in indexes]:
                raise RuntimeError(f"{cls.name}: a batch did not round-trip")

        return step

    writes = _timed(meter, ddb_meter, [(1, write(i)) for i in range(n)])
    if cls.batch_reads:
        chunks = [read_order[s : s + BATCH] for s in range(0, n, BATCH)]
        reads = _timed(meter, ddb_meter, [(len(c), read_batch(c)) for c in chunks])
    else:
        reads = _timed(meter, ddb_meter, [(1, read(i)) for i in read_order])
    items = tenant_items(ddb_client(), approach.table, approach.customer_id)  # unmetered
    if len(items) != n:
        raise RuntimeError(f"{cls.name}: expected {n} stored items, found {len(items)}")
    plain = sum(plaintext_bytes(p) for p in data)
    return {
        "approach": cls.name,
        "records": n,
        "kms_latency_ms": latency_s * 1000,
        "kms_calls_per_record_write": writes.kms_calls / n,
        "kms_calls_per_record_read": reads.kms_calls / n,
        "kms_operations": dict(meter.calls),
        "records_per_s_write": n / writes.seconds,
        "records_per_s_read": n / reads.seconds,
        "mean_ms_write": sum(writes.latencies_ms) / n,
        "dynamodb_ms_per_record_write": writes.dynamodb_seconds * 1000 / n,
        "p50_ms_write": percentile(writes.latencies_ms, 50),
        "p99_ms_write": percentile(writes.latencies_ms, 99),
        "mean_ms_read": sum(reads.latencies_ms) / n,
        "dynamodb_ms_per_record_read": reads.dynamodb_seconds * 1000 / n,
        "p50_ms_read": percentile(reads.latencies_ms, 50),
        "p99_ms_read": percentile(reads.latencies_ms, 99),
        "stored_bytes_per_record": sum(item_size(i) for i in items) / n,
        "ciphertext_overhead_bytes_per_field": (sum(binary_bytes(i) for i in items) - plain) / n / len(FIELDS),
        "read_mode": "multi-get, 100 ids per request" if cls.batch_reads else "one GET per record",
        "dynamodb_operations": dict(ddb_meter.calls),
        "dynamodb_write_units_per_record_write": writes.write_units / n,
        "key_table_write_units_per_record_write": writes.key_table_write_units / n,
        "dynamodb_read_units_per_record_read": reads.read_units / n,
        "usd_per_million_records_write": per_million_records(
            writes.kms_calls / n, (writes.write_units + writes.key_table_write_units) / n, DYNAMODB_PER_WRITE_UNIT
        ),
        "usd_per_million_records_read": per_million_records(
            reads.kms_calls / n, reads.read_units / n, DYNAMODB_PER_READ_UNIT
        ),
    }
