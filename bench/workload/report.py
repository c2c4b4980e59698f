"""Rows, the table, the verdicts and ``workload.json``: every row under every design."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TextIO

from bench.workload.designs import DESIGNS
from bench.workload.production import Production
from bench.workload.scenario import ZIPF_S, Result, Scenario
from bench.workload.simulation import Simulation

HOUR = 3600.0
DAY = 24 * HOUR

# (label, tenants, writers, readers, writes/s, reads/s, uniform history, issue 14's numbers for today's caches)
ROWS: tuple[tuple[str, int, int, int, float, float, float, tuple[float, float, float] | None], ...] = (
    ("1 tenant", 1, 1, 1, 10, 10, 6 * HOUR, (0.001, 0.07, 0.013)),
    ("100 tenants", 100, 10, 10, 10, 10, 6 * HOUR, (0.18, 0.97, 0.75)),
    ("1,000 tenants", 1000, 10, 10, 50, 50, 6 * HOUR, (0.20, 0.94, 0.66)),
    ("10,000 tenants", 10000, 50, 50, 50, 50, 6 * HOUR, (0.48, 1.00, 0.96)),
    ("goal: 10,000 tenants, 30 days", 10000, 50, 50, 50, 50, 30 * DAY, None),
)


def scenarios(label: str, row: tuple[Any, ...], **overrides: Any) -> list[Scenario]:
    _label, tenants, writers, readers, write_rate, read_rate, history_s, _issue = row
    return [
        replace(Scenario(label, tenants, writers, readers, write_rate, read_rate, history_s, locality), **overrides)
        for locality in ("uniform", "recent")
    ]


def _history_label(seconds: float) -> str:
    return f"{seconds / DAY:g} d" if seconds >= DAY else f"{seconds / HOUR:g} h"


def _kms_cell(run: Mapping[str, Any]) -> str:
    """KMS calls per record read: the total, split into Decrypt + GenerateMac when there are MAC calls."""
    total = run["read_calls_per_record"]
    if not run["mac_calls"]:
        return f"{total:.3g}"
    return f"{total:.3g} ({run['decrypt_calls'] / run['reads']:.3g} + {run['mac_calls'] / run['reads']:.2g})"


def _write_cell(row: Mapping[str, Any]) -> str:
    expected = row.get("write_expected")
    return f"{row['write']:.3g}" + ("" if expected is None else f" (model {expected:.2g})")


def _fleet_cell(row: Mapping[str, Any]) -> str:
    if not any(run["fleet_gets"] or run["fleet_queries"] for run in row["runs"]):
        return "-"
    return "; ".join(
        f"{run['fleet_gets'] / run['reads']:.3f} / {run['fleet_puts'] / run['reads']:.3f}"
        f" / {run['fleet_queries'] / run['reads']:.3f}"
        for run in row["runs"]
    )


def _fetch_cell(row: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{run['key_fetches_per_read']:.3f} ({run['key_read_units'] / run['reads']:.3f} RU)" for run in row["runs"]
    )


def table(report: list[dict[str, Any]]) -> str:
    lines = [
        (
            "| tenants | writer/reader containers | writes/s | reads/s | design | write (Encrypt) "
            "| read, uniform over history (Decrypt + GenerateMac) | read, recent-heavy (mean 10 min) "
            "| fleet table get / put / query per read (uniform; recent) "
            "| key fetches per read: KMS + fleet + key table (read units) (uniform; recent) "
            "| issue 14 (write / uniform / recent) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report:
        issue = row["issue"]
        uniform, recent = row["runs"]
        lines.append(
            f"| {row['tenants']:,} | {row['writers']} / {row['readers']} "
            f"| {row['write_rate']:g} | {row['read_rate']:g} "
            f"| {row['design']} | {_write_cell(row)} | {_kms_cell(uniform)} ({_history_label(row['history_s'])}) "
            f"| {_kms_cell(recent)} | {_fleet_cell(row)} | {_fetch_cell(row)} "
            f"| {' / '.join(f'{v:g}' for v in issue) if issue else '-'} |"
        )
    return "\n".join(lines)


GOAL_ROW = "goal: 10,000 tenants, 30 days"
GOAL_WRITE = 0.01  # issue 14 item 4: KMS calls per write ...
GOAL_READ = 0.05  # ... and per read (uniform over 30 days)
GOAL_FETCHES = 0.1  # issue 23 item 2: key fetches (KMS + fleet + key table requests) per read
SINGLE_TENANT_ROW = "1 tenant"


def verdicts(report: list[dict[str, Any]]) -> list[str]:
    """Issue 14 item 4, per design: the goal row's bounds, and the single tenant no worse than today."""
    by = {(row["row"], row["design"]): row for row in report}
    lines = []
    for (label, design), row in by.items():
        if label == GOAL_ROW:
            met = row["write"] <= GOAL_WRITE and row["read_uniform"] <= GOAL_READ
            lines.append(
                f"{design}: goal row write {row['write']:.3g} (<= {GOAL_WRITE:g}), read {row['read_uniform']:.3g} "
                f"(<= {GOAL_READ:g}): {'met' if met else 'NOT met'}"
            )
            fetches = row["runs"][0]["key_fetches_per_read"]
            lines.append(
                f"{design}: goal row key fetches per read {fetches:.3g} (<= {GOAL_FETCHES:g}): "
                + ("met" if fetches <= GOAL_FETCHES else "NOT met")
            )
    for (label, design), row in by.items():
        today = by.get((label, "today"))
        if label == SINGLE_TENANT_ROW and design != "today" and today is not None:
            worse = [k for k in ("write", "read_uniform", "read_recent") if row[k] > today[k]]
            lines.append(
                f"{design}: single tenant {row['write']:.3g} / {row['read_uniform']:.3g} / {row['read_recent']:.3g} "
                f"vs today {today['write']:.3g} / {today['read_uniform']:.3g} / {today['read_recent']:.3g}: "
                + (f"worse on {', '.join(worse)}" if worse else "no worse")
            )
    return lines


def _simulate(job: tuple[Scenario, str, dict[str, Any]]) -> Result:
    scenario, name, bounds = job
    return Simulation(scenario, DESIGNS[name](Production(**bounds))).run()


def run_table(
    designs: list[str], production: Production, progress: TextIO = sys.stdout, jobs: int = 1, **overrides: Any
) -> list[dict[str, Any]]:
    """Every row under every design, both localities; ``jobs`` > 1 runs simulations in worker
    processes (each simulation is deterministic on its own, so the results do not change)."""
    plan = [(row, name) for row in ROWS for name in designs]
    work = [(sc, name, production.overrides) for row, name in plan for sc in scenarios(row[0], row, **overrides)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_simulate, work))
    else:
        results = [_simulate(job) for job in work]
    report = []
    for k, (row, name) in enumerate(plan):
        uniform, recent = results[2 * k], results[2 * k + 1]
        expected = DESIGNS[name](production).expected_write_calls(work[2 * k][0])
        report.append(
            {
                "row": row[0],
                "design": name,
                "tenants": row[1],
                "writers": row[2],
                "readers": row[3],
                "write_rate": row[4],
                "read_rate": row[5],
                "history_s": row[6],
                "write": round(uniform.write_calls_per_record, 5),
                "write_expected": None if expected is None else round(expected, 7),
                "read_uniform": round(uniform.read_calls_per_record, 5),
                "read_recent": round(recent.read_calls_per_record, 5),
                "issue": row[7] if name == "today" else None,
                "runs": [
                    {
                        **asdict(r),
                        "write_calls_per_record": r.write_calls_per_record,
                        "read_calls_per_record": r.read_calls_per_record,
                        "key_fetches_per_read": r.key_fetches_per_read,
                    }
                    for r in (uniform, recent)
                ],
            }
        )
        print(f"  {row[0]} [{name}]: {uniform.seconds + recent.seconds:.1f} s", file=progress, flush=True)
    return report


def settings_line(overrides: Mapping[str, Any], elapsed: float) -> str:
    return (
        f"{elapsed:.0f} s; Zipf s={ZIPF_S}, churn mean {overrides['churn_mean_s'] or 0:g} s, measured "
        f"{overrides['measure_s']:g} s after {overrides['warmup_s']:g} s warm-up, seed {overrides['seed']}. "
        "today: tenant-scoped keys, writer 300 s / 1000 records, reader cache 300 s / 1000 entries; "
        "pool: pool-scoped writer keys at the config defaults, reader caches per container; pool+fleet: "
        "pool plus the shared fleet key table (GenerateMac counted as a read's KMS call)."
    )


def report_workload(
    out: Path, designs: list[str] | None = None, progress: TextIO = sys.stdout, jobs: int = 1, **overrides: Any
) -> str:
    """Run the table (``Scenario`` defaults unless overridden), write ``out``/workload.json, return the text."""
    settings = {
        "seed": Scenario.seed,
        "measure_s": Scenario.measure_s,
        "warmup_s": Scenario.warmup_s,
        "churn_mean_s": Scenario.churn_mean_s,
        "arrivals": Scenario.arrivals,
        **overrides,
    }
    started = time.perf_counter()
    report = run_table(designs or list(DESIGNS), Production(), progress, jobs, **settings)
    elapsed = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    document = {"settings": settings, "zipf_s": ZIPF_S, "rows": report, "verdicts": verdicts(report)}
    (out / "workload.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return "\n\n".join([table(report), "\n".join(verdicts(report)), settings_line(settings, elapsed)])
