"""Bulk jobs from the command line: beacon backfill, tenant offboarding, ledger replay.

    python -m tools.jobs backfill [--segments 4] [--dry-run] [--resume JOB_ID]
    python -m tools.jobs offboard --customer acme [--segments 4] [--dry-run] [--resume JOB_ID]
    python -m tools.jobs restore-replay --table pii-vault-restored [--segments 4] [--dry-run] [--resume JOB_ID]
    python -m tools.jobs rewrap --source-key ARN --target-key ARN [--customer acme] [--verify-only] [--dry-run]
    python -m tools.jobs offboard --customer acme --shred-key [--deletion-days 30]

``rewrap`` moves wrapped data keys with kms:ReEncrypt (chalicelib/service/rewrap.py), then runs its
verify pass (a second job, ``<job>-verify``). ``offboard --shred-key`` ends, once every
segment is done, by scheduling the deletion of the tenant's own KMS key (crypto-shredding,
docs/tenant-keys.md), with the operator's credentials: the offboard role has no KMS.

Settings come from the environment like the functions' (``PII_VAULT_TABLE``,
``PII_VAULT_KMS_KEY_ID``, ``PII_VAULT_BEACON_KEY_ID``...); ``--endpoint-url`` points at a
local stack (``make dev``: http://127.0.0.1:5000). Segments run in parallel threads on
this machine, or, with ``--invoke FUNCTION``, as ``lambda:Invoke`` of the deployed job
function (``pii-vault-<env>-indexer-backfill``, ``pii-vault-<env>-offboard-offboard`` as
``make package`` names them), one segment per invocation, invoked again until done: the
work then happens on AWS, not here.

Progress goes to stderr (one line per page), the final report (JSON) to stdout. Exit 0
when every segment is done, 3 when a deadline stopped some (run again with ``--resume``).
A dry run writes nothing (no checkpoint either) and reports what it would do.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.service.jobs import Control, SegmentRun, deadline_after
from chalicelib.store.checkpoints import Checkpoint

NOT_DONE_EXIT = 3


def _stamp() -> str:
    """Time plus a random suffix: two runs started in the same second get their own job ids
    (a new run must never pick up another run's checkpoints; --resume does that on purpose)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Progress:
    def __init__(self, label: str, total: int, out: Any = None) -> None:
        self._label = label
        self._total = total
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, checkpoint: Checkpoint) -> None:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(checkpoint.counts.items()))
        state = "done" if checkpoint.done else "..."
        with self._lock:
            print(
                f"{self._label} {checkpoint.job_id} segment {checkpoint.segment}/{self._total}: "
                f"page {checkpoint.pages}, {counts} {state}",
                file=self._out or sys.stderr,  # the stream of the moment (tests replace it)
                flush=True,
            )


def _settings(args: argparse.Namespace, role: str) -> Any:
    from chalicelib.stages import settings_for

    return settings_for(role=role)


def _clients(args: argparse.Namespace, settings: Any) -> Any:
    """The stage's wiring clients (``chalicelib.stages.wiring.Clients``) against ``--endpoint-url``."""
    import boto3

    from chalicelib.stages.wiring import Clients

    session = boto3.session.Session(region_name=settings.region)
    return Clients.of(
        session.client("kms", endpoint_url=args.endpoint_url),
        session.client("dynamodb", endpoint_url=args.endpoint_url),
    )


def run_segments(segments: Sequence[int], run_one: Callable[[int], Checkpoint], parallel: int) -> list[Checkpoint]:
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(run_one, segments))


def _control(args: argparse.Namespace, settings: Any, clients: Any, label: str, total: int) -> Control:
    from chalicelib.stages.wiring import build_checkpoints

    return Control(
        build_checkpoints(settings, clients, dry_run=args.dry_run),
        deadline_after(args.max_seconds) if args.max_seconds else (lambda: False),
        Progress(label + (" (dry run)" if args.dry_run else ""), total),
    )


def _invoke(args: argparse.Namespace, settings: Any, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each payload to the deployed function until it reports done (one segment per call)."""
    import boto3

    lam = boto3.session.Session(region_name=settings.region).client("lambda", endpoint_url=args.endpoint_url)

    def one(payload: dict[str, Any]) -> dict[str, Any]:
        while True:
            response = lam.invoke(FunctionName=args.invoke, Payload=json.dumps(payload).encode())
            report: dict[str, Any] = json.loads(response["Payload"].read())
            if "FunctionError" in response:
                raise RuntimeError(f"{args.invoke} failed on segment {payload['segment']}: {report}")
            print(json.dumps(report), file=sys.stderr, flush=True)
            if report.get("done"):
                return report

    with ThreadPoolExecutor(max_workers=max(1, len(payloads))) as pool:
        return list(pool.map(one, payloads))


def backfill(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.service.jobs import backfill_segment
    from chalicelib.stages.wiring import build_indexed_scan, build_indexer

    job_id = args.resume or f"backfill-{_stamp()}"
    settings = _settings(args, "indexer")
    if args.invoke:
        return _invoke(
            args,
            settings,
            [
                {"job": job_id, "segment": s, "total_segments": args.segments, "dry_run": args.dry_run}
                for s in range(args.segments)
            ],
        )
    clients = _clients(args, settings)
    indexer, people = build_indexer(settings, clients), build_indexed_scan(settings, clients)
    control = _control(args, settings, clients, "backfill", args.segments)

    def run_one(segment: int) -> Checkpoint:
        return backfill_segment(indexer, people, SegmentRun(job_id, segment, args.segments, args.dry_run), control)

    return [c.report() for c in run_segments(range(args.segments), run_one, args.segments)]


def offboard(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.domain import validation
    from chalicelib.service.offboard import OffboardRun
    from chalicelib.stages.wiring import build_offboarding

    customer_id = validation.customer_id(args.customer)
    job_id = args.resume or f"offboard-{customer_id}-{_stamp()}"
    settings = _settings(args, "offboard")
    segments = range(args.segments + 1)  # 0: the tenant's items; 1..N: idempotency references
    if args.invoke:
        invoked = _invoke(
            args,
            settings,
            [
                {
                    "job": job_id,
                    "customer_id": customer_id,
                    "segment": s,
                    "total_segments": args.segments,
                    "dry_run": args.dry_run,
                }
                for s in segments
            ],
        )
        return invoked + shred_step(args, customer_id, invoked)
    clients = _clients(args, settings)
    offboarding = build_offboarding(settings, clients, _now)
    control = _control(args, settings, clients, "offboard", args.segments)

    def run_one(segment: int) -> Checkpoint:
        return offboarding.run(OffboardRun(job_id, customer_id, segment, args.segments, args.dry_run), control)

    # The items first (segment 0 writes the ledger entry), then the references in parallel.
    first = run_one(0)
    rest = run_segments(segments[1:], run_one, args.segments)
    reports = [c.report() for c in (first, *rest)]
    return reports + shred_step(args, customer_id, reports)


def shred_step(args: argparse.Namespace, customer_id: str, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """After a complete offboarding: ScheduleKeyDeletion of the tenant's own key (``--shred-key``).
    ``tools.tenants.shred`` queries the table itself first: reports are no proof the tenant is empty."""
    if not getattr(args, "shred_key", False) or not all(r.get("done") for r in reports):
        return []
    from chalicelib.stages.registry import operator_settings
    from tools.tenants import shred

    settings = operator_settings()  # the operator's step: the PII table, the tenant registry, the key's deletion
    clients = _clients(args, settings)
    report = shred(
        clients.kms(), clients.dynamodb(), settings, customer_id, days=args.deletion_days, dry_run=args.dry_run
    )
    return [
        {
            "job": reports[0]["job"],
            "segment": "shred-key",
            "done": bool(report.get("done", True)),
            "counts": {},
            **report,
        }
    ]


def rewrap(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.domain import validation
    from chalicelib.service.rewrap import RewrapPlan, rewrap_segment
    from chalicelib.stages.wiring import build_rewrap_parts

    customer_id = validation.customer_id(args.customer) if args.customer else None
    job_id = args.resume or f"rewrap-{customer_id or 'all'}-{_stamp()}"
    settings = _settings(args, "rewrap")
    segments = range(1 if customer_id else args.segments)
    payload = {"source_key": args.source_key, "target_key": args.target_key, "dry_run": args.dry_run}
    if customer_id:
        payload["customer_id"] = customer_id
    if args.invoke:
        passes = [] if args.verify_only else [(job_id, False)]
        out: list[dict[str, Any]] = []
        for jid, verify in [*passes, *([] if args.dry_run else [(job_id + "-verify", True)])]:
            out += _invoke(
                args,
                settings,
                [
                    {**payload, "job": jid, "segment": s, "total_segments": len(segments), "verify": verify}
                    for s in segments
                ],
            )
        return out
    plan = RewrapPlan(args.source_key, args.target_key, customer_id, settings.app_name, dry_run=args.dry_run)
    clients = _clients(args, settings)
    items, reencryptor, keys = build_rewrap_parts(settings, clients)

    def run_pass(jid: str, verify: bool) -> list[Checkpoint]:
        label = "rewrap-verify" if verify else "rewrap"
        control = _control(args, settings, clients, label, len(segments))

        def run_one(segment: int) -> Checkpoint:
            run = SegmentRun(jid, segment, len(segments), args.dry_run)
            return rewrap_segment(plan, run, items, reencryptor, control, keys=keys, verify=verify)

        return run_segments(segments, run_one, len(segments))

    done = [] if args.verify_only else run_pass(job_id, False)
    if not args.dry_run and all(c.done for c in done):
        done += run_pass(job_id + "-verify", True)
    return [c.report() for c in done]


def restore_replay(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Re-apply the ledger to ``--table`` (see ``chalicelib.service.replay``), as the operator."""
    from chalicelib.service.common import utc_now
    from chalicelib.service.replay import Replay, ReplayPlan
    from chalicelib.store.job_items import DynamoDbTenantItems, restore_point
    from chalicelib.store.ledger import DynamoDbLedger

    as_of = utc_now()
    job_id = args.resume or f"replay-{args.table}-{_stamp()}"
    settings = _settings(args, "offboard")
    clients = _clients(args, settings)
    ddb = clients.dynamodb()
    point = _restore_point(args.restore_point) if args.restore_point else restore_point(ddb, args.table)
    if point is None:
        raise SystemExit(
            f"tools.jobs: {args.table} names no restore point (not a restored table): give --restore-point"
        )
    skew = _dt.timedelta(seconds=args.skew_seconds)
    plan = ReplayPlan(restore_point=point, as_of=as_of, dry_run=args.dry_run, skew=skew)
    witness = DynamoDbLedger(ddb, args.witness) if args.witness else None
    if witness is None:
        print(
            "tools.jobs: no --witness (the ledger restored to the same point): entries dated after the restore "
            "point cannot be checked against their own append time",
            file=sys.stderr,
        )
    replay = Replay(
        DynamoDbTenantItems(ddb, args.table), DynamoDbLedger(ddb, settings.ledger_table_name), plan, witness
    )
    control = _control(args, settings, clients, "restore-replay", args.segments)

    def run_one(segment: int) -> Checkpoint:
        return replay.segment(SegmentRun(job_id, segment, args.segments, args.dry_run), control)

    return [c.report() for c in run_segments(range(args.segments), run_one, args.segments)]


def _restore_point(text: str) -> _dt.datetime:
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit("tools.jobs: --restore-point must be an ISO 8601 time, e.g. 2026-11-24T01:54:57Z") from None
    if moment.tzinfo is None:
        raise SystemExit("tools.jobs: --restore-point must name its time zone (Z for UTC)")
    return moment


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.jobs", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--segments", type=int, default=4, help="parallel-scan segments (default 4)")
    common.add_argument("--dry-run", action="store_true", help="write nothing, report what would be done")
    common.add_argument("--resume", metavar="JOB_ID", help="continue a job from its checkpoints")
    common.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:5000 (the local stack's moto)")
    common.add_argument("--max-seconds", type=float, default=0, help="stop (resumable) after this long")
    common.add_argument("--invoke", metavar="FUNCTION", help="run each segment as lambda:Invoke of this function")
    sub = parser.add_subparsers(dest="command", required=True)
    # Each command's runner: args -> the segments' reports.
    sub.add_parser("backfill", parents=[common], help="write missing or outdated email beacons").set_defaults(
        func=backfill
    )
    off = sub.add_parser("offboard", parents=[common], help="delete every record of one tenant")
    off.set_defaults(func=offboard)
    off.add_argument("--customer", required=True)
    off.add_argument("--shred-key", action="store_true", help="then schedule deletion of the tenant's own KMS key")
    off.add_argument("--deletion-days", type=int, default=None, help="ScheduleKeyDeletion waiting period, 7-30")
    rew = sub.add_parser("rewrap", parents=[common], help="move wrapped data keys to another KMS key (ReEncrypt)")
    rew.set_defaults(func=rewrap)
    rew.add_argument("--source-key", required=True, help="the KMS key ARN the data keys are under now")
    rew.add_argument("--target-key", required=True, help="the KMS key ARN to move them to")
    rew.add_argument("--customer", help="one tenant (default: every tenant)")
    rew.add_argument("--verify-only", action="store_true", help="only the verify pass")
    replay = sub.add_parser("restore-replay", parents=[common], help="re-apply the erasure ledger to a restored table")
    replay.set_defaults(func=restore_replay)
    replay.add_argument("--table", required=True, help="the table restored from a backup or PITR")
    replay.add_argument(
        "--restore-point", help="the time the restored table holds (default: its RestoreSummary.RestoreDateTime)"
    )
    replay.add_argument("--witness", metavar="TABLE", help="the erasure ledger restored to the same point")
    replay.add_argument(
        "--skew-seconds",
        type=float,
        default=5.0,
        help="clock differences tolerated around the restore point, erring towards erasure (default 5)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.segments <= 1000:
        parser.error("--segments must be 1-1000")
    if args.command == "restore-replay" and args.invoke:
        parser.error("restore-replay runs here, with the operator's credentials (see docs/find-and-forget.md)")
    from chalicelib.support.errors import PiiVaultError

    if args.command == "rewrap" and args.source_key == args.target_key:
        parser.error("--target-key must differ from --source-key")
    try:
        reports = args.func(args)
    except PiiVaultError as exc:
        print(f"tools.jobs: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    totals: Counter[str] = Counter()
    for report in reports:
        totals.update(report.get("counts", {}))
    done = all(report.get("done") for report in reports)
    summary = {
        "job": reports[0]["job"] if reports else None,
        "done": done,
        "dry_run": args.dry_run,
        "totals": dict(sorted(totals.items())),
        "segments": reports,
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if done else NOT_DONE_EXIT


if __name__ == "__main__":
    sys.exit(main())
