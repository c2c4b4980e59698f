"""``python -m bench.cost [--dir docs]``: the all-in cost table from the measured figures in ``--dir``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bench.cost
from bench.cost import cost_rows
from bench.cost.report import write_cost_report
from bench.stages import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=(bench.cost.__doc__ or "").split("\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "docs", help="where the measured JSON files are")
    args = parser.parse_args(argv)
    print(write_cost_report(cost_rows(args.dir), args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
