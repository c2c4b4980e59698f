"""``python -m bench.workload``: run the table, write workload.json, print the table."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import bench.workload
from bench.workload.designs import DESIGNS
from bench.workload.report import report_workload
from bench.workload.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workload", description=(bench.workload.__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where workload.json goes")
    parser.add_argument("--design", action="append", choices=list(DESIGNS), help="default: all designs")
    parser.add_argument("--seed", type=int, default=Scenario.seed)
    parser.add_argument("--measure-s", type=float, default=Scenario.measure_s)
    parser.add_argument("--warmup-s", type=float, default=Scenario.warmup_s)
    parser.add_argument(
        "--churn-mean-s", type=float, default=Scenario.churn_mean_s, help="mean container lifetime; 0 = no churn"
    )
    parser.add_argument("--arrivals", choices=("poisson", "fixed"), default=Scenario.arrivals)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    args = parser.parse_args(argv)
    print("Workload model (KMS calls per record), simulated:", flush=True)
    text = report_workload(
        args.out,
        args.design,
        seed=args.seed,
        measure_s=args.measure_s,
        warmup_s=args.warmup_s,
        churn_mean_s=args.churn_mean_s or None,
        arrivals=args.arrivals,
        jobs=args.jobs,
    )
    print()
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
