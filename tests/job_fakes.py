"""In-memory fakes of the jobs' store protocols (chalicelib/store/job_items.py, ledger.py,
references.py, checkpoints.py), on DynamoDB-shaped items.

They honour the same contracts as the DynamoDB stores: tests/integration/test_job_store_contract.py
runs one suite over both, so service tests against them (tests/unit/test_jobs.py) mean something.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from chalicelib.store import layout, tables
from chalicelib.store.checkpoints import MemoryCheckpoints
from chalicelib.store.dynamodb import ItemPage
from chalicelib.store.job_items import MASKED, PAGE_SIZE, Place, item_key, places
from chalicelib.store.ledger import TENANT_DONE, LedgerEntry, entry_of

Item = dict[str, Any]
Key = dict[str, Any]

__all__ = ["FakeLedger", "FakeReferences", "FakeTable", "MemoryCheckpoints"]


def _segment_of(key: tuple[str, ...], total: int) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(key).encode()).digest()[:4], "big") % total


class _KeyOf(Protocol):
    """An item's sort key (a tuple), or with ``as_key`` its DynamoDB key."""

    def __call__(self, item: Mapping[str, Any], as_key: bool = False) -> Any: ...


def _paged(
    rows: Sequence[tuple[tuple[str, ...], Item]], start: Key | None, key_of: _KeyOf, limit: int = PAGE_SIZE
) -> ItemPage:
    """Rows in key order after ``start``; a page and where the next one starts."""
    ordered = sorted(rows, key=lambda row: row[0])
    if start is not None:
        after = key_of(start)
        ordered = [row for row in ordered if row[0] > after]
    page = ordered[:limit]
    last: Key | None = key_of(page[-1][1], as_key=True) if len(ordered) > limit else None
    return [copy.deepcopy(item) for _k, item in page], last


class FakeTable:
    """The PII table (or a restored copy) for the jobs: ``TenantItems``, ``RestoredItems``,
    ``IndexedScan`` and ``SlotItems``."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self.items: dict[tuple[str, str], Item] = {}
        self._lock = threading.Lock()
        for item in items:
            self.put(item)

    @staticmethod
    def _key(item: Mapping[str, Any], as_key: bool = False) -> Any:
        if as_key:
            return item_key(item)
        return (item[layout.PK]["S"], item[layout.SK]["S"])

    def put(self, item: Item) -> None:
        self.items[self._key(item)] = copy.deepcopy(item)

    def _tenant(self, customer_id: str, prefix: str = "") -> list[tuple[tuple[str, ...], Item]]:
        pk = layout.partition_key(customer_id)
        return [(k, v) for k, v in self.items.items() if k[0] == pk and k[1].startswith(prefix)]

    # TenantItems / RestoredItems
    def key_page(self, customer_id: str, start: Key | None) -> tuple[list[Item], Key | None]:
        items, last = _paged(self._tenant(customer_id), start, self._key)
        return [item_key(i) for i in items], last

    def delete(self, key: Key) -> bool:
        with self._lock:
            return self.items.pop(self._key(key), None) is not None

    def holds_items(self, customer_id: str) -> bool:
        return bool(self._tenant(customer_id))

    def secret_items(self, customer_id: str, secret_id: str) -> list[Item]:
        head, versions = layout.secret_head_key(secret_id), layout.secret_version_prefix(secret_id)
        found = [v for k, v in sorted(self._tenant(customer_id, head)) if k[1] == head or k[1].startswith(versions)]
        out = []
        for item in found:
            kept = item_key(item)
            if layout.DELETING in item:
                kept[layout.DELETING] = item[layout.DELETING]
            out.append(copy.deepcopy(kept))
        return out

    # IndexedScan
    def scan_page(self, segment: int, total_segments: int, start: Key | None) -> tuple[list[Item], Key | None]:
        items, last = self._scan(segment, total_segments, start)
        wanted = set(layout.INDEXER_READ_ATTRIBUTES)
        return [{k: v for k, v in i.items() if k in wanted} for i in items], last

    def _scan(self, segment: int, total: int, start: Key | None) -> tuple[list[Item], Key | None]:
        rows = [(k, v) for k, v in self.items.items() if _segment_of(k, total) == segment]
        return _paged(rows, start, self._key)

    # SlotItems
    def page(self, customer_id: str | None, segment: int, total_segments: int, start: Key | None) -> ItemPage:
        if customer_id is None:
            return self._scan(segment, total_segments, start)
        if segment != 0:
            return [], None
        return _paged(self._tenant(customer_id), start, self._key)

    def get(self, key: Key) -> Item | None:
        found = self.items.get(self._key(key))
        return copy.deepcopy(found) if found is not None else None

    def update_slots(
        self, item: Item, new: Mapping[Place, bytes], kms_key: str | None, remove: Sequence[Place] = ()
    ) -> bool:
        """The DynamoDB store's condition: every replaced or removed key as read, the slot count
        as read, every masked slot attribute as read (absent ones still absent), kms_key as read."""
        with self._lock:
            current = self.items.get(self._key(item))
            if current is None:
                return False
            old, now = places(item), places(current)
            touched = [*new, *remove]
            if any(now.get(place) != old[place] for place in touched):
                return False
            if sum(1 for v, _s in now if v != MASKED) != sum(1 for v, _s in old if v != MASKED):
                return False
            if {p: b for p, b in now.items() if p[0] == MASKED} != {p: b for p, b in old.items() if p[0] == MASKED}:
                return False
            if current.get(layout.KMS_KEY) != item.get(layout.KMS_KEY):
                return False
            for (view, slot), blob in [*new.items(), *((p, None) for p in remove)]:
                if view == MASKED:
                    name = layout.MASKED_SLOT_PREFIX + slot
                    if blob is None:
                        current.pop(name, None)
                    else:
                        current[name] = {"B": blob}
                elif blob is None:
                    current[layout.SLOTS]["M"].pop(slot, None)
                else:
                    current[layout.SLOTS]["M"][slot] = {"B": blob}
            if kms_key is not None:
                current[layout.KMS_KEY] = {"S": kms_key}
            return True


class FakeLedger:
    """``TenantLedger`` and ``LedgerEntries`` in memory (and the writer's appends, for tests)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Item] = {}

    @staticmethod
    def _key(item: Mapping[str, Any], as_key: bool = False) -> Any:
        key = (item[tables.LEDGER_PK]["S"], item[tables.LEDGER_SK]["S"])
        return {tables.LEDGER_PK: {"S": key[0]}, tables.LEDGER_SK: {"S": key[1]}} if as_key else key

    def put(self, item: Item) -> None:
        self.items.setdefault(self._key(item), copy.deepcopy(item))

    def append(self, entry: LedgerEntry) -> None:
        self.put(entry.item())

    def record_tenant_erasure(self, customer_id: str, erased_at: str) -> None:
        self.append(LedgerEntry(tables.LEDGER_TENANT, customer_id, customer_id, erased_at))

    def record_tenant_empty(self, customer_id: str, at: str) -> None:
        self.append(LedgerEntry(TENANT_DONE, customer_id, customer_id, at))

    def page(self, segment: int, total_segments: int, start: Key | None) -> tuple[list[Item], Key | None]:
        rows = [(k, v) for k, v in self.items.items() if _segment_of(k, total_segments) == segment]
        return _paged(rows, start, self._key)

    def holds(self, entry: LedgerEntry) -> bool:
        if entry.legacy:
            key = (entry.customer_id, f"{entry.erased_at}#{entry.kind}#{entry.record_id}")
            return key in self.items
        return self._key(entry.key()) in self.items

    def tenant_emptied(self, customer_id: str) -> list[LedgerEntry]:
        partition = tables.ledger_partition(tables.LEDGER_TENANT, customer_id)
        entries = [entry_of(v) for k, v in sorted(self.items.items()) if k[0] == partition]
        return [e for e in entries if e is not None and e.kind == TENANT_DONE]

    def entries(self) -> list[LedgerEntry]:
        return [e for e in (entry_of(i) for i in self.items.values()) if e is not None]


class FakeReferences:
    """The idempotency table's references and records."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}

    def put(self, item: Item) -> None:
        self.items[item[tables.IDEMPOTENCY_ID]["S"]] = copy.deepcopy(item)

    def add(self, customer_id: str, kind: str, record_id: str, target: str, expires_at: int) -> None:
        ref = tables.ref_id(customer_id, kind, record_id)
        item = self.items.setdefault(ref, {tables.IDEMPOTENCY_ID: {"S": ref}})
        targets = set(item.get(tables.REF_TARGETS, {}).get("SS", [])) | {target}
        item[tables.REF_TARGETS] = {"SS": sorted(targets)}
        item[tables.IDEMPOTENCY_EXPIRATION] = {"N": str(expires_at)}

    def forget(self, customer_id: str, kind: str, record_id: str) -> int:
        item = self.items.pop(tables.ref_id(customer_id, kind, record_id), None)
        targets = tables.ref_targets(item or {})
        self.delete(self.record_keys(targets))
        return len(targets)

    def page(self, customer_id: str, segment: int, total_segments: int, start: Key | None) -> ItemPage:
        prefix = tables.ref_prefix(customer_id)

        def key_of(item: Mapping[str, Any], as_key: bool = False) -> Any:
            value = item[tables.IDEMPOTENCY_ID]["S"]
            return {tables.IDEMPOTENCY_ID: {"S": value}} if as_key else (value,)

        rows = [((k,), v) for k, v in self.items.items() if _segment_of((k,), total_segments) == segment]
        items, last = _paged(rows, start, key_of)
        return [i for i in items if i[tables.IDEMPOTENCY_ID]["S"].startswith(prefix)], last

    @staticmethod
    def record_keys(targets: Iterable[str]) -> list[Key]:
        return [{tables.IDEMPOTENCY_ID: {"S": target}} for target in targets]

    def delete(self, keys: Iterable[Key]) -> int:
        count = 0
        for key in keys:
            self.items.pop(key[tables.IDEMPOTENCY_ID]["S"], None)
            count += 1
        return count
