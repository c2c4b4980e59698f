"""The non-HTTP stages: the indexer (stream handler + backfill segments), offboarding, rewrap.

``create_app("indexer")`` registers the DynamoDB stream handler and the ``backfill``
function; ``create_app("offboard")`` the ``offboard`` function. Each job function works
one segment per invocation and returns its checkpoint report (``done: false`` means:
invoke again with the same job id to resume). ``python -m tools.jobs`` drives them.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from chalice import Chalice

from chalicelib.domain import validation
from chalicelib.support.config import Settings
from chalicelib.support.errors import ConfigurationError, ValidationError

STREAM_BATCH_SIZE = 100
# The Lambda functions of each job stage (``chalice deploy`` names them ``<app>-<stage>-<name>``;
# tools/stacks.py names and wires them in the packaged templates).
STREAM_FUNCTION = "index_beacons"
BACKFILL_FUNCTION = "backfill"
OFFBOARD_FUNCTION = "offboard"
REWRAP_FUNCTION = "rewrap"
FUNCTIONS = {
    "indexer": (STREAM_FUNCTION, BACKFILL_FUNCTION),
    "offboard": (OFFBOARD_FUNCTION,),
    "rewrap": (REWRAP_FUNCTION,),
}


def _int(event: dict[str, Any], name: str, minimum: int, maximum: int) -> int:
    value = event.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValidationError(f"{name} must be an integer from {minimum} to {maximum}", field=name)
    return value


def _job_id(event: dict[str, Any]) -> str:
    value = event.get("job")
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise ValidationError("job must be a string of 1-128 characters", field="job")
    return value


def register_indexer(app: Chalice, settings: Settings, indexer: Callable[[], Any], ddb: Callable[[], Any]) -> None:
    from chalicelib.service.bulk import (
        DynamoDbCheckpoints,
        backfill_processor,
        indexer_pages,
        lambda_deadline,
        run_segment,
    )

    if not settings.stream_arn:
        raise ConfigurationError("PII_VAULT_STREAM_ARN must name the PII table's stream in the indexer stage")

    @app.on_dynamodb_record(
        stream_arn=settings.stream_arn,
        batch_size=STREAM_BATCH_SIZE,
        starting_position="TRIM_HORIZON",
        name=STREAM_FUNCTION,
    )
    def index_beacons(event: Any) -> None:
        indexer().handle_records(event.to_dict().get("Records", []))

    @app.lambda_function(name=BACKFILL_FUNCTION)
    def backfill(event: dict[str, Any], context: Any) -> dict[str, Any]:
        total = _int(event, "total_segments", 1, 1_000_000)
        segment = _int(event, "segment", 0, total - 1)
        dry_run = event.get("dry_run") is True
        from chalicelib.service.bulk import MemoryCheckpoints

        checkpoints = MemoryCheckpoints() if dry_run else DynamoDbCheckpoints(ddb(), settings.jobs_table_name)
        worker = indexer().dry_run() if dry_run else indexer()
        result = run_segment(
            _job_id(event),
            segment,
            indexer_pages(ddb(), settings.table_name, segment, total),
            backfill_processor(worker),
            checkpoints,
            out_of_time=lambda_deadline(context),
        )
        return result.report()


def register_offboard(app: Chalice, settings: Settings, ddb: Callable[[], Any]) -> None:
    from chalicelib.service import timestamp
    from chalicelib.service.bulk import (
        DynamoDbCheckpoints,
        MemoryCheckpoints,
        OffboardRun,
        lambda_deadline,
        offboard_segment,
    )
    from chalicelib.store.ledger import TENANT, DynamoDbErasures

    @app.lambda_function(name=OFFBOARD_FUNCTION)
    def offboard(event: dict[str, Any], context: Any) -> dict[str, Any]:
        customer_id = validation.customer_id(event.get("customer_id", ""))
        total = _int(event, "total_segments", 1, 1_000_000)
        run = OffboardRun(
            _job_id(event), customer_id, _int(event, "segment", 0, total), total, dry_run=event.get("dry_run") is True
        )
        erasures = DynamoDbErasures(
            ddb(),
            table=settings.table_name,
            ledger_table=settings.ledger_table_name,
            idempotency_table=settings.idempotency_table_name,
        )
        checkpoints = MemoryCheckpoints() if run.dry_run else DynamoDbCheckpoints(ddb(), settings.jobs_table_name)
        result = offboard_segment(
            run,
            ddb(),
            table=settings.table_name,
            idempotency_table=settings.idempotency_table_name,
            checkpoints=checkpoints,
            record_erasure=lambda at: erasures.record(customer_id, TENANT, customer_id, at),
            now=lambda: timestamp(_dt.datetime.now(_dt.UTC)),
            out_of_time=lambda_deadline(context),
        )
        return result.report()


def rewrap_plan(event: dict[str, Any], settings: Settings) -> Any:
    """The rewrap event's plan: source and target key, one tenant (``customer_id``) or all."""
    from chalicelib.service.rewrap import RewrapPlan

    keys = {}
    for name in ("source_key", "target_key"):
        value = event.get(name)
        if not isinstance(value, str) or not 1 <= len(value) <= 2048:
            raise ValidationError(f"{name} must be a KMS key ARN", field=name)
        keys[name] = value
    if keys["source_key"] == keys["target_key"]:
        raise ValidationError("target_key must differ from source_key", field="target_key")
    customer = event.get("customer_id")
    return RewrapPlan(
        source_key=keys["source_key"],
        target_key=keys["target_key"],
        customer_id=None if customer is None else validation.customer_id(customer),
        app_name=settings.app_name,
        dry_run=event.get("dry_run") is True,
    )


def register_rewrap(app: Chalice, settings: Settings, kms: Callable[[], Any], ddb: Callable[[], Any]) -> None:
    from chalicelib.service.bulk import DynamoDbCheckpoints, MemoryCheckpoints, lambda_deadline
    from chalicelib.service.rewrap import rewrap_segment

    @app.lambda_function(name=REWRAP_FUNCTION)
    def rewrap(event: dict[str, Any], context: Any) -> dict[str, Any]:
        total = _int(event, "total_segments", 1, 1_000_000)
        segment = _int(event, "segment", 0, total - 1)
        plan = rewrap_plan(event, settings)
        checkpoints = MemoryCheckpoints() if plan.dry_run else DynamoDbCheckpoints(ddb(), settings.jobs_table_name)
        result = rewrap_segment(
            plan,
            _job_id(event),
            segment,
            total,
            ddb(),
            kms(),
            table=settings.table_name,
            checkpoints=checkpoints,
            verify=event.get("verify") is True,
            out_of_time=lambda_deadline(context),
        )
        report: dict[str, Any] = result.report()
        return report
