"""How big a benchmark run is: ``quick`` (the default of ``make bench``: within 10 minutes on a
2-core machine) or ``full`` (the sizes of the figures the README quotes as "full size").

Every part of the benchmark takes its defaults from the size named by ``--size`` (``make bench
BENCH_SIZE=full``); an explicit argument (``--records``, ``--people``, ...) still wins. The
sizes are stated here only.

What the quick size gives up, part by part:

- approaches (``bench.run``): 200 records instead of 1,000. Per-record KMS calls of the
  uncached rows are exact at any size; the cached rows amortise their few KMS calls over
  fewer records (the workload model gives the figure at scale); latency percentiles rest on
  fewer samples.
- lookup (``bench.lookup``): 1,000 people only (full: also 10,000), and 3 of the slow
  "query the tenant and decrypt everything" lookups instead of 10 (each decrypts every
  person of the tenant: about 11 s at 1,000 people, 110 s at 10,000).
- rewrap (``bench.rewrap``): 1,000 records instead of 10,000 (ReEncrypt calls per record
  are exact at any size; records/s is moto's table scan).
- cold start (``bench.coldstart``): 3 fresh processes per function instead of 7.
- the workload model and the per-operation costs run the same in both sizes.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    records: int  # person records per approach (bench.run)
    lookup_people: tuple[int, ...]  # tenant sizes of the lookup rows (bench.lookup)
    lookups: int  # beacon searches per tenant size
    naive_lookups: int  # "query the tenant and decrypt everything" lookups per tenant size
    rewrap_records: int  # person items rewrapped per case (bench.rewrap)
    cold_start_runs: int  # fresh processes per function (bench.coldstart); the median is reported
    operations: int  # timed requests per operation (bench.operations)


SIZES: dict[str, Size] = {
    "quick": Size(
        "quick",
        records=200,
        lookup_people=(1000,),
        lookups=50,
        naive_lookups=3,
        rewrap_records=1000,
        cold_start_runs=3,
        operations=200,
    ),
    "full": Size(
        "full",
        records=1000,
        lookup_people=(1000, 10_000),
        lookups=50,
        naive_lookups=10,
        rewrap_records=10_000,
        cold_start_runs=7,
        operations=1000,
    ),
}
DEFAULT_SIZE = "quick"


def size_from_argv(argv: list[str] | None) -> Size:
    """The ``--size`` named in ``argv`` (read before the other arguments: their defaults depend on it)."""
    pre = argparse.ArgumentParser(add_help=False)
    add_size_argument(pre)
    known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    return SIZES[known.size]


def add_size_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        choices=list(SIZES),
        default=DEFAULT_SIZE,
        help=f"benchmark size (default {DEFAULT_SIZE}; bench/sizes.py says what each runs)",
    )
