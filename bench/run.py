"""Side-by-side benchmark: KMS calls, throughput, latency, storage and cost of field encryption.

    python -m bench.run [--size quick|full] [--records N] [--kms-latency-ms 10] [--out docs]
                        [--skip-cold-start] [--skip-operations] [--skip-workload]

One process, moto's ``mock_aws`` for KMS and DynamoDB, a simulated KMS round trip
added to every KMS call through a botocore ``before-call.kms.*`` hook. Every approach
writes and then reads back (in another order) the same person records, five PII
fields each, and every read is checked against what was written. Approaches:

- ``naive-per-field-kms``: the tutorial pattern, one ``kms:Encrypt``/``Decrypt`` per field
  (written here only; the encryption context binds tenant, record and field).
- ``aws-encryption-sdk-per-field`` / ``-per-record``: one ESDK message per field or per
  record (dev dependency only; context checked on decrypt, as a careful user would).
- ``pii-vault-cache-off`` / ``pii-vault-cache-on``: the shipped app over HTTP
  (``chalice.test.Client``), data key caches off, or at the bounds the stages ship
  with (the settings' defaults, which the stage stacks' parameters default to).
  ``pii-vault-cache-on-multiget`` reads the same way through ``GET .../people?ids=`` in
  batches of 100 (latency per record amortised).

Then what one operation of the shipped stages costs, metered (bench/operations.py: the inputs of
the all-in cost table, ``python -m bench.cost``). Then the cold start of every function of every
stage: the zip ``make package`` builds, the import of ``app.py`` and the first request, boto3
included (bench/coldstart.py). Then the workload model (bench/workload/: KMS calls per record under many tenants, warm
containers and long histories, for the design before issue 14 and the pool/fleet designs;
about a minute of CPU, run in worker processes).
Prints Markdown tables (with dollars at the list prices of bench/prices.py) and writes
``docs/benchmark.json``, ``docs/benchmark-operations.json``, ``docs/benchmark-coldstart.json``,
``docs/benchmark.png`` and ``docs/workload.json``. ``--size`` (bench/sizes.py) sets the defaults:
``quick`` for ``make bench``, ``full`` for the README's full-size figures.
Numbers, not assertions: nothing here fails on a slow run.

Modules: tools/sample.py (the records), aws (sandbox, meters, item sizes), approaches and
piivault (what is compared), measure (timing), operations, coldstart (and lambda_events), cost
(and cost_report), prices, report, chart, sizes, stages.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import warnings
from pathlib import Path

from bench.aws import aws_sandbox
from bench.chart import chart
from bench.coldstart import cold_start, cold_start_table
from bench.measure import run_approach
from bench.operations import measure_operations, operations_table
from bench.piivault import APPROACHES
from bench.report import cost_note, masked_view_table, ratios, results_table, secrets_line
from bench.sizes import add_size_argument, size_from_argv
from bench.stages import ROOT
from bench.workload import report_workload
from tools.sample import people


def main(argv: list[str] | None = None) -> int:
    size = size_from_argv(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=(__doc__ or "").split("\n")[0])
    add_size_argument(parser)
    parser.add_argument("--records", type=int, default=size.records, help="person records per approach")
    parser.add_argument("--kms-latency-ms", type=float, default=10.0, help="simulated KMS round trip (default 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where benchmark.json/.png go")
    parser.add_argument("--approaches", default="", help="comma-separated subset of approach names")
    parser.add_argument("--skip-cold-start", action="store_true", help="no cold start per stage (no packaging)")
    parser.add_argument("--skip-operations", action="store_true", help="no per-operation costs (bench/operations.py)")
    parser.add_argument("--skip-workload", action="store_true", help="no workload model table (bench/workload/)")
    args = parser.parse_args(argv)
    if args.records < 1 or args.kms_latency_ms < 0:
        parser.error("--records must be >= 1 and --kms-latency-ms >= 0")
    chosen = [c for c in APPROACHES if not args.approaches or c.name in args.approaches.split(",")]
    if not chosen:
        parser.error(f"no such approach; known: {', '.join(c.name for c in APPROACHES)}")
    sys.path.insert(0, str(ROOT))
    # Known and by design: chalice.test.Client does not enforce the IAMAuthorizer (SigV4).
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")

    data = people(args.records)
    read_order = list(range(args.records))
    random.Random(7).shuffle(read_order)
    started = time.perf_counter()
    results = []
    with aws_sandbox() as resources:
        for cls in chosen:
            t0 = time.perf_counter()
            results.append(run_approach(cls, resources, data, args.kms_latency_ms / 1000, read_order))
            print(f"  {cls.name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    title = (
        f"{args.records} person records x 5 PII fields, simulated KMS latency "
        f"{args.kms_latency_ms:g} ms/call, moto in one process"
    )
    print(f"\n## Field encryption: {title}\n")
    print(results_table(results))
    factor = ratios(results)
    if factor:
        print(
            f"\nKMS calls per record, naive / pii-vault with caches off: "
            f"{factor['write']:.1f}x fewer on writes, {factor['read']:.1f}x fewer on reads"
        )
    masked = masked_view_table(results)
    if masked:
        print(f"\n## Writes with the masked projection against writes without\n\n{masked}")
    print(f"\n{cost_note()}\n\n{secrets_line()}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    chart(results, args.out / "benchmark.png", title)
    if not args.skip_operations:
        operations = measure_operations(size.operations, args.kms_latency_ms / 1000)
        print(f"\n## One operation of the shipped stages, metered ({size.operations} of each, warm)\n")
        print(operations_table(operations))
        (args.out / "benchmark-operations.json").write_text(json.dumps(operations, indent=2) + "\n", encoding="utf-8")
    if not args.skip_cold_start:
        rows = cold_start(size.cold_start_runs, log=sys.stderr)
        print(f"\n## Cold start per function (median of {size.cold_start_runs} fresh processes)\n")
        print(cold_start_table(rows))
        (args.out / "benchmark-coldstart.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if not args.skip_workload:
        print("\n## Workload model: KMS calls per record (simulated; python -m bench.workload)\n")
        print(report_workload(args.out, progress=sys.stderr, jobs=os.cpu_count() or 1))
    written = ["benchmark.json", "benchmark.png"]
    written += [] if args.skip_operations else ["benchmark-operations.json"]
    written += [] if args.skip_cold_start else ["benchmark-coldstart.json"]
    written += [] if args.skip_workload else ["workload.json"]
    print(f"\nwrote {', '.join(written)} in {args.out} in {time.perf_counter() - started:.0f} s ({args.size} size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
