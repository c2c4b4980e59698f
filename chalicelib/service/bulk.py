"""Bulk jobs over a table, one segment at a time: backfill of beacons, tenant offboarding,
and the erasure ledger's replay after a restore (rewrap will use the same frame).

A job is ``job_id`` + segments. Each segment walks its pages (a DynamoDB parallel-scan
segment, ``Segment``/``TotalSegments``, or a tenant's Query) and after every page saves
a checkpoint (``LastEvaluatedKey`` + counters) under (job id, segment) in the jobs table.
A run stops at its deadline (a Lambda stops well before its timeout) and reports
``done: false``; the next run with the same job id resumes after the last saved page.
Every step is idempotent (setting a beacon that is already there, deleting an item that
is gone), so a page processed twice after a crash does no harm. A dry run counts what it
would do and saves no checkpoint.

Runs from the command line (``python -m tools.jobs``: all segments in threads, or each
segment as a ``lambda:Invoke`` of the deployed function) and as Lambda functions (one
segment per invocation: ``chalicelib.api.functions``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.store import layout
from chalicelib.support.aws_errors import conditional_write, translate
from chalicelib.support.errors import StorageError

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
# A Lambda segment run stops this long before the function's timeout.
LAMBDA_MARGIN_MS = 10_000

Item = dict[str, Any]
Key = dict[str, Any]
PageSource = Callable[[Key | None], tuple[list[Item], Key | None]]
Processor = Callable[[list[Item]], Counter[str]]


@dataclass
class Checkpoint:
    job_id: str
    segment: int
    last_key: Key | None = None
    counts: Counter[str] = field(default_factory=Counter)
    done: bool = False
    pages: int = 0

    def report(self) -> dict[str, Any]:
        return {
            "job": self.job_id,
            "segment": self.segment,
            "done": self.done,
            "pages": self.pages,
            "counts": dict(sorted(self.counts.items())),
        }


class Checkpoints(Protocol):
    def load(self, job_id: str, segment: int) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...


class MemoryCheckpoints:
    """Dry runs and tests: nothing persisted beyond this object."""

    def __init__(self) -> None:
        self._saved: dict[tuple[str, int], Checkpoint] = {}

    def load(self, job_id: str, segment: int) -> Checkpoint | None:
        saved = self._saved.get((job_id, segment))
        return None if saved is None else _copy(saved)

    def save(self, checkpoint: Checkpoint) -> None:
        self._saved[(checkpoint.job_id, checkpoint.segment)] = _copy(checkpoint)


def _copy(checkpoint: Checkpoint) -> Checkpoint:
    return Checkpoint(
        checkpoint.job_id,
        checkpoint.segment,
        checkpoint.last_key,
        Counter(checkpoint.counts),
        checkpoint.done,
        checkpoint.pages,
    )


class DynamoDbCheckpoints:
    """Checkpoints in the jobs table: ids and counters only (a key holds tenant and record ids)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    def load(self, job_id: str, segment: int) -> Checkpoint | None:
        try:
            item = self._ddb.get_item(
                TableName=self._table, Key=layout.job_key(job_id, segment), ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "dynamodb", "GetItem", StorageError) from exc
        if not item:
            return None
        return Checkpoint(
            job_id=job_id,
            segment=segment,
            last_key=json.loads(item["last_key"]["S"]) if "last_key" in item else None,
            counts=Counter({k: int(v["N"]) for k, v in item.get("counts", {}).get("M", {}).items()}),
            done=bool(item.get("done", {}).get("BOOL", False)),
            pages=int(item.get("pages", {}).get("N", "0")),
        )

    def save(self, checkpoint: Checkpoint) -> None:
        item: dict[str, Any] = {
            **layout.job_key(checkpoint.job_id, checkpoint.segment),
            "counts": {"M": {k: {"N": str(v)} for k, v in checkpoint.counts.items()}},
            "done": {"BOOL": checkpoint.done},
            "pages": {"N": str(checkpoint.pages)},
            "updated_at": {"N": str(int(time.time()))},
        }
        if checkpoint.last_key is not None:
            item["last_key"] = {"S": json.dumps(checkpoint.last_key, sort_keys=True)}
        try:
            self._ddb.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "dynamodb", "PutItem", StorageError) from exc


def run_segment(
    job_id: str,
    segment: int,
    pages: PageSource,
    process: Processor,
    checkpoints: Checkpoints,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    progress: Callable[[Checkpoint], None] = lambda _c: None,
) -> Checkpoint:
    """Process pages from the checkpoint on until the segment is done or time is up."""
    checkpoint = checkpoints.load(job_id, segment) or Checkpoint(job_id, segment)
    while not checkpoint.done and not out_of_time():
        items, last_key = pages(checkpoint.last_key)
        checkpoint.counts.update(process(items))
        checkpoint.counts["items"] += len(items)
        checkpoint.last_key = last_key
        checkpoint.done = last_key is None
        checkpoint.pages += 1
        checkpoints.save(checkpoint)
        progress(checkpoint)
    return checkpoint


def deadline_after(seconds: float, clock: Callable[[], float] = time.monotonic) -> Callable[[], bool]:
    end = clock() + seconds
    return lambda: clock() >= end


def lambda_deadline(context: Any, margin_ms: int = LAMBDA_MARGIN_MS) -> Callable[[], bool]:
    """Out of time ``margin_ms`` before the invocation's timeout (at most a fifth of the time
    the invocation started with, so a short timeout still gets work done; no context: never)."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return lambda: False
    margin = min(margin_ms, context.get_remaining_time_in_millis() // 5)
    return lambda: bool(context.get_remaining_time_in_millis() < margin)


# -- page sources ------------------------------------------------------------------------


def _call(ddb: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response: dict[str, Any] = getattr(ddb, operation)(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "dynamodb", operation, StorageError) from exc
    return response


def scan_pages(ddb: Any, table: str, segment: int, total_segments: int, **extra: Any) -> PageSource:
    """One parallel-scan segment, PAGE_SIZE items a page (consistent: the checkpoint is exact)."""

    def page(start: Key | None) -> tuple[list[Item], Key | None]:
        kwargs = {"ExclusiveStartKey": start} if start else {}
        response = _call(
            ddb,
            "scan",
            TableName=table,
            Segment=segment,
            TotalSegments=total_segments,
            Limit=PAGE_SIZE,
            ConsistentRead=True,
            **extra,
            **kwargs,
        )
        return response.get("Items", []), response.get("LastEvaluatedKey")

    return page


def indexer_pages(ddb: Any, table: str, segment: int, total_segments: int) -> PageSource:
    """The backfill's scan segment: only the attributes the indexer may read (its IAM policy
    refuses a Scan without this projection)."""
    return scan_pages(ddb, table, segment, total_segments, **layout.indexer_projection())


def tenant_pages(ddb: Any, table: str, customer_id: str, sort_prefix: str | None = None) -> PageSource:
    """Keys (and creation time) of one tenant's items (one partition: a Query, not a scan)."""

    def page(start: Key | None) -> tuple[list[Item], Key | None]:
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        response = _call(
            ddb,
            "query",
            TableName=table,
            Limit=PAGE_SIZE,
            ConsistentRead=True,
            ProjectionExpression=f"{layout.PK}, {layout.SK}, {layout.CREATED_AT}",
            **layout.key_condition(customer_id, sort_prefix),
            **kwargs,
        )
        return response.get("Items", []), response.get("LastEvaluatedKey")

    return page


def all_pages(pages: PageSource) -> Iterable[Item]:
    start: Key | None = None
    while True:
        items, start = pages(start)
        yield from items
        if start is None:
            return


def delete_each(ddb: Any, table: str, keys: Iterable[Key]) -> int:
    """DeleteItem per key: offboarding's role may delete but not write (BatchWriteItem
    would also allow puts), so no batch. A missing item is no error."""
    count = 0
    for key in keys:
        _call(ddb, "delete_item", TableName=table, Key=key)
        count += 1
    return count


def delete_if_created_by(ddb: Any, table: str, key: Key, erased_at: str) -> bool:
    """Delete the item unless it was created after ``erased_at`` (an id reused since)."""
    return conditional_write("DeleteItem", lambda: _ddb_delete(ddb, table, key, erased_at))


def _ddb_delete(ddb: Any, table: str, key: Key, erased_at: str) -> None:
    ddb.delete_item(
        TableName=table,
        Key=key,
        ConditionExpression="attribute_exists(#pk) AND (attribute_not_exists(#c) OR #c <= :t)",
        ExpressionAttributeNames={"#pk": layout.PK, "#c": layout.CREATED_AT},
        ExpressionAttributeValues={":t": {"S": erased_at}},
    )


def item_keys(items: Iterable[Mapping[str, Any]]) -> list[Key]:
    return [{layout.PK: item[layout.PK], layout.SK: item[layout.SK]} for item in items]


# -- the jobs ----------------------------------------------------------------------------


def backfill_processor(indexer: Any) -> Processor:
    """Index every person of a page with the indexer's own code (one unwrap per data key a page)."""

    def process(items: list[Item]) -> Counter[str]:
        opener = indexer.for_batch()
        return Counter(indexer.index_item(item, opener) for item in items)

    return process


def offboard_items_processor(ddb: Any, table: str, *, dry_run: bool) -> Processor:
    """Delete a page of a tenant's items: people (their beacons and GSI entries go with them),
    secret heads and every secret version."""

    def process(items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for item in items:
            sort_key = item[layout.SK]["S"]
            counts["people" if layout.person_id_of(sort_key) is not None else "secret_items"] += 1
        if not dry_run:
            delete_each(ddb, table, item_keys(items))
        counts["deleted" if not dry_run else "would_delete"] += len(items)
        return counts

    return process


def references_processor(ddb: Any, idempotency_table: str, customer_id: str, *, dry_run: bool) -> Processor:
    """Delete a tenant's idempotency references and the Powertools records they point to."""
    prefix = layout.ref_prefix(customer_id)

    def process(items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        keys: list[Key] = []
        for item in items:
            if not item.get(layout.IDEMPOTENCY_ID, {}).get("S", "").startswith(prefix):
                continue
            keys.append({layout.IDEMPOTENCY_ID: item[layout.IDEMPOTENCY_ID]})
            target = item.get(layout.REF_TARGET, {}).get("S")
            if target:
                keys.append({layout.IDEMPOTENCY_ID: {"S": target}})
        counts["idempotency_items"] += len(keys)
        if keys and not dry_run:
            delete_each(ddb, idempotency_table, keys)
        return counts

    return process


def references_scan(ddb: Any, idempotency_table: str, customer_id: str, segment: int, total: int) -> PageSource:
    return scan_pages(
        ddb,
        idempotency_table,
        segment,
        total,
        FilterExpression="begins_with(#id, :prefix)",
        ExpressionAttributeNames={"#id": layout.IDEMPOTENCY_ID},
        ExpressionAttributeValues={":prefix": {"S": layout.ref_prefix(customer_id)}},
    )


def replay_processor(ddb: Any, target_table: str, *, dry_run: bool) -> Processor:
    """Re-apply a page of ledger entries to ``target_table`` (a table restored from a backup).

    Deletes what the entry erased and nothing created after it: a secret id or a tenant
    id used again after the erasure keeps its newer items.
    """

    def erase(keys: Iterable[Item], erased_at: str, counts: Counter[str]) -> None:
        for item in keys:
            created = layout.created_at_of(item)
            key = {layout.PK: item[layout.PK], layout.SK: item[layout.SK]}
            if created is not None and created > erased_at:
                counts["kept_newer"] += 1
            elif dry_run:
                counts["would_delete"] += 1
            elif delete_if_created_by(ddb, target_table, key, erased_at):
                counts["deleted"] += 1

    def process(items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for entry in items:
            customer_id, kind, record_id, erased_at = layout.ledger_entry_of(entry)
            counts[f"entries_{kind}"] += 1
            if kind == "person":
                found = list(all_pages(tenant_pages(ddb, target_table, customer_id, layout.person_sort_key(record_id))))
                erase([i for i in found if i[layout.SK]["S"] == layout.person_sort_key(record_id)], erased_at, counts)
            elif kind == "secret":
                head = layout.secret_head_key(record_id)
                found = list(all_pages(tenant_pages(ddb, target_table, customer_id, head)))
                mine = [
                    i
                    for i in found
                    if i[layout.SK]["S"] == head
                    or i[layout.SK]["S"].startswith(layout.secret_version_prefix(record_id))
                ]
                erase(mine, erased_at, counts)
            elif kind == "tenant":
                erase(all_pages(tenant_pages(ddb, target_table, customer_id)), erased_at, counts)
        return counts

    return process


@dataclass(frozen=True)
class OffboardRun:
    """One offboarding step: segment 0 deletes the tenant's items (a Query), segments
    1..total_segments scan the idempotency table for the tenant's references."""

    job_id: str
    customer_id: str
    segment: int
    total_segments: int
    dry_run: bool = False


def offboard_segment(
    run: OffboardRun,
    ddb: Any,
    *,
    table: str,
    idempotency_table: str,
    checkpoints: Checkpoints,
    record_erasure: Callable[[str], None],
    now: Callable[[], str],
    out_of_time: Callable[[], bool] = lambda: False,
    progress: Callable[[Checkpoint], None] = lambda _c: None,
) -> Checkpoint:
    if run.segment == 0:
        if not run.dry_run and checkpoints.load(run.job_id, 0) is None:
            # Ledger first: a restore replays it even if the deletion is interrupted.
            record_erasure(now())
        pages = tenant_pages(ddb, table, run.customer_id)
        process = offboard_items_processor(ddb, table, dry_run=run.dry_run)
    else:
        pages = references_scan(ddb, idempotency_table, run.customer_id, run.segment - 1, run.total_segments)
        process = references_processor(ddb, idempotency_table, run.customer_id, dry_run=run.dry_run)
    return run_segment(run.job_id, run.segment, pages, process, checkpoints, out_of_time=out_of_time, progress=progress)
