"""Tenant offboarding: every item of one tenant goes, and the erasure stays recorded.

Segment 0 appends the tenant-wide ledger entry first, on every run (a restore replays it
even if the run is interrupted; a checkpoint is no proof it was appended), then deletes the
tenant's items page by page (a Query of its partition, keys only): people, secret heads and
every secret version. Segments 1..N scan the idempotency table for the tenant's references
and delete them with every record they name.

A stored checkpoint is only a position. Segment 0 is ``done`` when a final strongly
consistent query finds no item of the tenant left; only then does it append ``tenant_done``
to the ledger (what the replay and the key shredding go by). Items found at that point
(written meanwhile, or skipped because a forged checkpoint said ``done``) start another pass,
up to ``MAX_PASSES``; after that the segment reports ``done: false`` with ``items_left``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.service.jobs import Control, run_segment
from chalicelib.store import layout
from chalicelib.store.checkpoints import Checkpoint
from chalicelib.store.dynamodb import Item, ItemPage, Key
from chalicelib.store.job_items import TenantItems, item_key
from chalicelib.store.ledger import TenantLedger
from chalicelib.store.references import References
from chalicelib.store.tables import IDEMPOTENCY_ID, ref_prefix, ref_targets

logger = logging.getLogger(__name__)

MAX_PASSES = 3


@dataclass(frozen=True)
class OffboardRun:
    """Segment 0: the tenant's items; segments 1..total_segments: its idempotency references."""

    job_id: str
    customer_id: str
    segment: int
    total_segments: int
    dry_run: bool = False


class Offboarding:
    def __init__(
        self,
        items: TenantItems,
        references: References,
        ledger: TenantLedger,
        now: Callable[[], str],
    ) -> None:
        self._items = items
        self._references = references
        self._ledger = ledger
        self._now = now

    def run(self, run: OffboardRun, control: Control) -> Checkpoint:
        if run.segment == 0:
            return self._items_segment(run, control)
        return self._references_segment(run, control)

    def _items_segment(self, run: OffboardRun, control: Control) -> Checkpoint:
        customer_id = run.customer_id
        if not run.dry_run:
            # Ledger first: a restore replays it even if the deletion is interrupted. On every run,
            # not only a job's first: a checkpoint is no proof one was appended (a planted "done"
            # would skip it), and a later entry erases no less.
            self._ledger.record_tenant_erasure(customer_id, self._now())

        def pages(start: Key | None) -> ItemPage:
            return self._items.key_page(customer_id, start)

        def process(items: list[Item]) -> Counter[str]:
            counts: Counter[str] = Counter()
            for item in items:
                counts["people" if layout.person_id_of(item[layout.SK]["S"]) is not None else "secret_items"] += 1
            if run.dry_run:
                counts["would_delete"] += len(items)
            else:
                counts["deleted"] += sum(1 for item in items if self._items.delete(item_key(item)))
            return counts

        checkpoint = run_segment(run.job_id, 0, pages, process, control)
        passes = 1
        while checkpoint.done and not run.dry_run:
            if not self._items.holds_items(customer_id):
                self._ledger.record_tenant_empty(customer_id, self._now())
                if checkpoint.counts.pop("items_left", None) is not None:
                    control.checkpoints.save(checkpoint)
                return checkpoint
            if passes >= MAX_PASSES:
                checkpoint.done, checkpoint.last_key = False, None
                checkpoint.counts["items_left"] = 1
                control.checkpoints.save(checkpoint)
                return checkpoint
            # Items left although every page was walked: start over (counters carry on).
            logger.warning("offboard %s: items of %s left after a full pass; another pass", run.job_id, customer_id)
            passes += 1
            checkpoint.counts["passes_repeated"] += 1
            checkpoint.done, checkpoint.last_key = False, None
            control.checkpoints.save(checkpoint)
            checkpoint = run_segment(run.job_id, 0, pages, process, control)
        return checkpoint

    def _references_segment(self, run: OffboardRun, control: Control) -> Checkpoint:
        prefix = ref_prefix(run.customer_id)

        def pages(start: Key | None) -> ItemPage:
            return self._references.page(run.customer_id, run.segment - 1, run.total_segments, start)

        def process(items: list[Item]) -> Counter[str]:
            keys: list[Key] = []
            for item in items:
                if item.get(IDEMPOTENCY_ID, {}).get("S", "").startswith(prefix):
                    keys += [{IDEMPOTENCY_ID: item[IDEMPOTENCY_ID]}, *self._references.record_keys(ref_targets(item))]
            if keys and not run.dry_run:
                self._references.delete(keys)
            return Counter({"idempotency_items": len(keys)})

        return run_segment(run.job_id, run.segment, pages, process, control)
