"""The bulk-job frame, and the smallest job on it: the beacon backfill.

A job is ``job_id`` + segments. Each segment walks its pages (a parallel-scan segment,
``Segment``/``TotalSegments``, or a tenant's Query) and after every page saves a checkpoint
(the key the next page starts after + counters) under (job id, segment). A run stops at its
deadline (a Lambda stops well before its timeout) and reports ``done: false``; the next run
with the same job id resumes after the last saved page. Every step is idempotent (setting a
beacon that is already there, deleting an item that is gone), so a page processed twice
after a crash does no harm. A dry run counts what it would do and saves no checkpoint.

The jobs are use cases over store protocols (``chalicelib.store.checkpoints``,
``job_items``, ``ledger``, ``references``), each with an in-memory fake in the tests:
backfill (here), offboarding (``offboard``), the ledger's replay after a restore
(``replay``) and the rewrap (``rewrap``). They run from the command line (``python -m
tools.jobs``: all segments in threads, or each as a ``lambda:Invoke``) and as Lambda
functions (one segment per invocation: ``chalicelib.api.functions``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.envelope.format import Opener
from chalicelib.store.checkpoints import Checkpoint, Checkpoints, MemoryCheckpoints
from chalicelib.store.dynamodb import Item, ItemPage, Key

# A Lambda segment run stops this long before the function's timeout.
LAMBDA_MARGIN_MS = 10_000

PageSource = Callable[[Key | None], ItemPage]
Processor = Callable[[list[Item]], Counter[str]]


def _never() -> bool:
    return False


def _quiet(_checkpoint: Checkpoint) -> None:
    return None


@dataclass(frozen=True)
class SegmentRun:
    """One segment of one job."""

    job_id: str
    segment: int
    total_segments: int
    dry_run: bool = False


@dataclass(frozen=True)
class Control:
    """Where a segment keeps its checkpoints, when it must stop, whom it tells about each page."""

    checkpoints: Checkpoints = field(default_factory=MemoryCheckpoints)
    out_of_time: Callable[[], bool] = _never
    progress: Callable[[Checkpoint], None] = _quiet


def run_segment(job_id: str, segment: int, pages: PageSource, process: Processor, control: Control) -> Checkpoint:
    """Process pages from the checkpoint on until the segment is done or time is up."""
    checkpoint = control.checkpoints.load(job_id, segment) or Checkpoint(job_id, segment)
    while not checkpoint.done and not control.out_of_time():
        items, last_key = pages(checkpoint.last_key)
        checkpoint.counts.update(process(items))
        checkpoint.counts["items"] += len(items)
        checkpoint.last_key = last_key
        checkpoint.done = last_key is None
        checkpoint.pages += 1
        control.checkpoints.save(checkpoint)
        control.progress(checkpoint)
    return checkpoint


def deadline_after(seconds: float, clock: Callable[[], float] = time.monotonic) -> Callable[[], bool]:
    end = clock() + seconds
    return lambda: clock() >= end


def lambda_deadline(context: Any, margin_ms: int = LAMBDA_MARGIN_MS) -> Callable[[], bool]:
    """Out of time ``margin_ms`` before the invocation's timeout (at most a fifth of the time
    the invocation started with, so a short timeout still gets work done; no context: never)."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return _never
    margin = min(margin_ms, context.get_remaining_time_in_millis() // 5)
    return lambda: bool(context.get_remaining_time_in_millis() < margin)


# -- backfill ------------------------------------------------------------------------------


class Indexes(Protocol):
    """What the backfill needs of the indexer (``chalicelib.service.indexer.Indexer``)."""

    def for_batch(self) -> Opener: ...

    def index_item(self, item: Item, opener: Opener | None = None) -> str: ...

    def dry_run(self) -> Indexes: ...


class IndexedScan(Protocol):
    def scan_page(self, segment: int, total_segments: int, start: Key | None) -> ItemPage: ...


def backfill_processor(indexer: Indexes) -> Processor:
    """Index every person of a page with the indexer's own code (one unwrap per data key a page)."""

    def process(items: list[Item]) -> Counter[str]:
        opener = indexer.for_batch()
        return Counter(indexer.index_item(item, opener) for item in items)

    return process


def backfill_segment(indexer: Indexes, people: IndexedScan, run: SegmentRun, control: Control) -> Checkpoint:
    """Write missing or outdated beacons of one scan segment (a dry run counts them)."""
    worker = indexer.dry_run() if run.dry_run else indexer

    def pages(start: Key | None) -> ItemPage:
        return people.scan_page(run.segment, run.total_segments, start)

    return run_segment(run.job_id, run.segment, pages, backfill_processor(worker), control)
