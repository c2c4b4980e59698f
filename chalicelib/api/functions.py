"""The non-HTTP stages' Lambda entry points: the indexer (stream handler + backfill segments),
offboarding, rewrap. Each parses its event and calls a service (``chalicelib.service``).

``create_app("indexer")`` registers the DynamoDB stream handler and the ``backfill``
function; ``create_app("offboard")`` the ``offboard`` function; ``create_app("rewrap")`` the
``rewrap`` function. Each job function works one segment per invocation and returns its
checkpoint report (``done: false`` means: invoke again with the same job id to resume).
``python -m tools.jobs`` drives them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Chalice

from chalicelib.domain import validation
from chalicelib.support.config import Settings
from chalicelib.support.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from chalicelib.service.indexer import Indexer
    from chalicelib.service.jobs import IndexedScan
    from chalicelib.service.offboard import Offboarding
    from chalicelib.service.rewrap import RewrapParts, RewrapPlan
    from chalicelib.store.checkpoints import Checkpoints

# The Lambda functions of each job stage (``chalice deploy`` names them ``<app>-<stage>-<name>``;
# the registry, ``chalicelib.stages.registry``, lists them; infra wires them in the templates).
STREAM_FUNCTION = "index_beacons"
BACKFILL_FUNCTION = "backfill"
OFFBOARD_FUNCTION = "offboard"
REWRAP_FUNCTION = "rewrap"

CheckpointsFor = Callable[[bool], "Checkpoints"]  # dry run -> where the segment keeps its checkpoints


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


def register_indexer(
    app: Chalice,
    settings: Settings,
    indexer: Callable[[], Indexer],
    people: Callable[[], IndexedScan],
    checkpoints: CheckpointsFor,
    *,
    batch_size: int,
) -> None:
    from chalicelib.service.jobs import Control, SegmentRun, backfill_segment, lambda_deadline

    if not settings.stream_arn:
        raise ConfigurationError("PII_VAULT_STREAM_ARN must name the PII table's stream in the indexer stage")

    @app.on_dynamodb_record(
        stream_arn=settings.stream_arn,
        batch_size=batch_size,
        starting_position="TRIM_HORIZON",
        name=STREAM_FUNCTION,
    )
    def index_beacons(event: Any) -> None:
        # A record that cannot be processed is skipped, counted and logged by the indexer; a
        # transient failure raises, and the event source mapping retries (bisecting, bounded).
        indexer().handle_records(event.to_dict().get("Records", []))

    @app.lambda_function(name=BACKFILL_FUNCTION)
    def backfill(event: dict[str, Any], context: Any) -> dict[str, Any]:
        total = _int(event, "total_segments", 1, 1_000_000)
        run = SegmentRun(_job_id(event), _int(event, "segment", 0, total - 1), total, event.get("dry_run") is True)
        control = Control(checkpoints(run.dry_run), lambda_deadline(context))
        return backfill_segment(indexer(), people(), run, control).report()


def register_offboard(app: Chalice, offboarding: Callable[[], Offboarding], checkpoints: CheckpointsFor) -> None:
    from chalicelib.service.jobs import Control, lambda_deadline
    from chalicelib.service.offboard import OffboardRun

    @app.lambda_function(name=OFFBOARD_FUNCTION)
    def offboard(event: dict[str, Any], context: Any) -> dict[str, Any]:
        customer_id = validation.customer_id(event.get("customer_id", ""))
        total = _int(event, "total_segments", 1, 1_000_000)
        dry_run = event.get("dry_run") is True
        run = OffboardRun(_job_id(event), customer_id, _int(event, "segment", 0, total), total, dry_run)
        return offboarding().run(run, Control(checkpoints(dry_run), lambda_deadline(context))).report()


def rewrap_plan(event: dict[str, Any], settings: Settings) -> RewrapPlan:
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


def register_rewrap(
    app: Chalice, settings: Settings, parts: Callable[[], RewrapParts], checkpoints: CheckpointsFor
) -> None:
    from chalicelib.service.jobs import Control, SegmentRun, lambda_deadline
    from chalicelib.service.rewrap import rewrap_segment

    @app.lambda_function(name=REWRAP_FUNCTION)
    def rewrap(event: dict[str, Any], context: Any) -> dict[str, Any]:
        total = _int(event, "total_segments", 1, 1_000_000)
        plan = rewrap_plan(event, settings)
        run = SegmentRun(_job_id(event), _int(event, "segment", 0, total - 1), total, plan.dry_run)
        control = Control(checkpoints(plan.dry_run), lambda_deadline(context))
        items, reencryptor, keys = parts()
        verify = event.get("verify") is True
        result = rewrap_segment(plan, run, items, reencryptor, control, keys=keys, verify=verify)
        report: dict[str, Any] = result.report()
        return report
