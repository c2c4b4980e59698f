"""The erasure ledger's replay on a table restored from a backup or a point in time.

A restored table holds what the PII table held at its restore point T (DynamoDB's own
``RestoreDateTime``). Replay re-applies every ledger entry to it, deciding only from facts
nobody who writes the PII table can forge: the entry's kind (its partition, held by IAM
to its appender), the restore point, the ledger as it stood at T (the **witness**: the
ledger table restored to the same point), record ids, and the restored table's own state
at T. It never reads a timestamp stored in an item (``created_at`` is plaintext: anyone
who writes the table can set it to 9999 to be kept).

- **person**: the person is deleted by id, whatever its timestamps (ids are random and
  never reused).
- **secret**: an erasure after T (``erased_at`` > T - ``SKEW``) predates nothing in the
  restored table: every item of the secret goes. An erasure before T finished before T
  unless the head at T is still marked deleting (or gone with versions left): then its
  leftovers go; otherwise the items at T are the secret created again since: kept.
- **tenant**: likewise: after T, every item of the tenant goes; before T, the items are
  kept only if offboarding had found the tenant empty before T (a ``tenant_done`` entry
  in the witness, else dated before T): otherwise they are leftovers of an offboarding
  under way at T, and go.

Refused, counted and logged (ids and times only), never applied: an entry dated after the
replay began (``as_of``: no erasure happens in the future), an entry dated after T that the
witness already held at T (dated after its own append), and an entry that does not parse.
Without a witness the second check cannot be made; such entries count as
``unchecked_append_time``. The skew (``SKEW`` by default) errs towards erasure: a secret or tenant re-created
within it of being erased, right at the restore point, is erased again.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from collections import Counter
from dataclasses import dataclass

from chalicelib.domain import validation
from chalicelib.service.common import timestamp
from chalicelib.service.jobs import Control, SegmentRun, run_segment
from chalicelib.store import layout
from chalicelib.store.checkpoints import Checkpoint
from chalicelib.store.dynamodb import Item, ItemPage, Key
from chalicelib.store.job_items import RestoredItems, item_key
from chalicelib.store.ledger import PERSON, SECRET, TENANT, LedgerEntries, LedgerEntry, entry_of
from chalicelib.support.errors import ValidationError

logger = logging.getLogger(__name__)

SKEW = _dt.timedelta(seconds=5)
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_RECORD_ID = {PERSON: validation.person_id, SECRET: validation.secret_id}


@dataclass(frozen=True)
class ReplayPlan:
    restore_point: _dt.datetime  # T: the moment the restored table holds
    as_of: _dt.datetime  # when the replay began
    dry_run: bool = False
    skew: _dt.timedelta = SKEW  # clock differences between the writers and DynamoDB

    @property
    def restored_at(self) -> str:
        return timestamp(self.restore_point)

    @property
    def erased_after_restore(self) -> str:
        """An entry dated after this predates everything in the restored table."""
        return timestamp(self.restore_point - self.skew)


class Replay:
    def __init__(
        self, restored: RestoredItems, ledger: LedgerEntries, plan: ReplayPlan, witness: LedgerEntries | None = None
    ) -> None:
        self._restored = restored
        self._ledger = ledger
        self._plan = plan
        self._witness = witness

    def segment(self, run: SegmentRun, control: Control) -> Checkpoint:
        def pages(start: Key | None) -> ItemPage:
            return self._ledger.page(run.segment, run.total_segments, start)

        return run_segment(run.job_id, run.segment, pages, self.process, control)

    def process(self, items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for item in items:
            entry = _valid(entry_of(item))
            if entry is None:
                counts["entries_malformed"] += 1
                logger.warning("replay: a ledger item that is not an entry: refused")
                continue
            counts[f"entries_{entry.kind}"] += 1
            counts["entries_legacy"] += entry.legacy
            refusal = self._refusal(entry, counts)
            if refusal:
                counts[refusal] += 1
                logger.warning(
                    "replay: %s entry of %s %s dated %s refused: %s",
                    entry.kind,
                    entry.customer_id,
                    entry.record_id,
                    entry.erased_at,
                    refusal,
                )
            elif entry.kind == PERSON:
                self._delete([layout.person_key(entry.customer_id, entry.record_id)], counts)
            elif entry.kind == SECRET:
                self._secret(entry, counts)
            elif entry.kind == TENANT:
                self._tenant(entry, counts)
        return counts

    def _refusal(self, entry: LedgerEntry, counts: Counter[str]) -> str | None:
        if entry.erased_at > timestamp(self._plan.as_of):
            return "refused_future_dated"
        if entry.erased_at > self._plan.restored_at:
            if self._witness is None:
                counts["unchecked_append_time"] += 1
            elif self._witness.holds(entry):
                return "refused_dated_after_append"
        return None

    def _delete(self, keys: list[Key], counts: Counter[str]) -> None:
        for key in keys:
            if self._plan.dry_run:
                counts["would_delete"] += 1
            elif self._restored.delete(key):
                counts["deleted"] += 1
            else:
                counts["absent"] += 1

    def _secret(self, entry: LedgerEntry, counts: Counter[str]) -> None:
        items = self._restored.secret_items(entry.customer_id, entry.record_id)
        head = layout.secret_head_key(entry.record_id)
        heads = [i for i in items if i[layout.SK]["S"] == head]
        leftovers = not heads or any(i.get(layout.DELETING, {}).get("BOOL") for i in heads)
        if entry.erased_at > self._plan.erased_after_restore or leftovers:
            self._delete([item_key(i) for i in items], counts)
        else:
            counts["kept_recreated"] += len(items)

    def _tenant(self, entry: LedgerEntry, counts: Counter[str]) -> None:
        if entry.erased_at <= self._plan.erased_after_restore and self._emptied_before_restore(entry.customer_id):
            counts["kept_recreated"] += self._count(entry.customer_id)
            return
        start: Key | None = None
        while True:
            # Deleting pages as they come: a Query resumes after a key whether or not it still exists.
            items, start = self._restored.key_page(entry.customer_id, start)
            self._delete([item_key(i) for i in items], counts)
            if start is None:
                return

    def _emptied_before_restore(self, customer_id: str) -> bool:
        if self._witness is not None:
            return bool(self._witness.tenant_emptied(customer_id))
        return any(done.erased_at <= self._plan.restored_at for done in self._ledger.tenant_emptied(customer_id))

    def _count(self, customer_id: str) -> int:
        total, start = 0, None
        while True:
            items, start = self._restored.key_page(customer_id, start)
            total += len(items)
            if start is None:
                return total


def _valid(entry: LedgerEntry | None) -> LedgerEntry | None:
    """The entry when its ids and time have the shapes pii-vault writes, else None."""
    if entry is None or not _TIMESTAMP.fullmatch(entry.erased_at):
        return None
    try:
        validation.customer_id(entry.customer_id)
        if entry.kind in _RECORD_ID:
            _RECORD_ID[entry.kind](entry.record_id)
        elif entry.record_id != entry.customer_id:
            return None
    except ValidationError:
        return None
    return entry
