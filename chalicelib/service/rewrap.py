"""Rewrap: move wrapped data keys from one KMS key to another without seeing a plaintext.

Every item with key slots (people, secret versions) holds ``slots`` (slot -> data key
wrapped by KMS) and ``kms_key``; its field blobs name their slot and the slot's kind
(format v2: 1 = tenant context, 2 = pool context; v1 = tenant). A person's masked view
(docs/masked.md) holds its own wrapped keys in top-level ``mk_<slot>`` attributes,
named by the ``m_<field>`` blobs with kinds 3/4 (the same contexts plus ``"view": "masked"``);
the job moves them exactly like ``slots``, each under its own exact context, so a tenant
moved to its own key and then shredded has neither view readable anywhere. The job calls
``kms:ReEncrypt`` (source and destination encryption context identical, ``SourceKeyId``
pinned) once per **distinct** wrapped key: a run-local map old blob -> new blob serves
every other record that shares it (pool keys are shared by many records of many
tenants). Field ciphertexts are never touched: the data key itself does not change.

Each item is updated with a conditional ``UpdateItem`` on the exact old slot blobs, the
number of slots and the old ``kms_key``: a record a writer rewrote meanwhile fails the condition, is read
again and handled anew (never clobbered); after a few lost races it is counted as
``skipped_concurrent`` for the next run. ``kms_key`` becomes the target once every slot
of the item is under it.

Scope: one tenant (a Query of its partition) or every tenant (a parallel scan). Moving
one tenant to a **tenant key** moves only its tenant-context slots: a pool data key also
protects other tenants' records, so a copy under the tenant's key would neither isolate
nor shred anything; such slots are counted as ``pool_slots_left`` and need re-sealing by
a writer (docs/tenant-keys.md). Moving every tenant (a suspected compromise of the
shared key, a move to a multi-Region key) moves both kinds.

The verify pass asks KMS, without Decrypt, under which key each slot is: a ReEncrypt with
``SourceKeyId`` = the target whose output is thrown away succeeds only for a slot under
the target. Dry runs call no KMS and write nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.envelope.format import (
    KIND_MASKED_POOL,
    KIND_MASKED_TENANT,
    KIND_POOL,
    KIND_TENANT,
    encryption_context,
    parse_blob,
)
from chalicelib.keys.reencrypt import ReEncryptor, RewrapMap
from chalicelib.service import rewrap_keys
from chalicelib.service.jobs import Control, Processor, SegmentRun, run_segment
from chalicelib.store import layout
from chalicelib.store.checkpoints import Checkpoint
from chalicelib.store.dynamodb import Item, ItemPage, Key
from chalicelib.store.job_items import FULL, MASKED, Place, SlotItems, item_key, places
from chalicelib.store.key_table import KeyEntries
from chalicelib.support.errors import IntegrityError

logger = logging.getLogger(__name__)

UPDATE_ATTEMPTS = 4
# Every attribute a rewrap's UpdateItem names: the key, the slots, the masked view's slots, the key id.
REWRAP_WRITE_ATTRIBUTES = layout.REWRAP_WRITE_ATTRIBUTES  # the store layout states them (and the IAM policy)
_POOL_KINDS = frozenset({KIND_POOL, KIND_MASKED_POOL})


# What a rewrap segment runs on: the items, the ReEncrypt capability (source, target) ->
# ReEncryptor, and the key table's entries (format v3).
RewrapParts = tuple[SlotItems, Callable[[str, str], ReEncryptor], KeyEntries]


@dataclass(frozen=True)
class RewrapPlan:
    source_key: str
    target_key: str
    customer_id: str | None  # None: every tenant
    app_name: str
    dry_run: bool = False


def slot_kinds(item: Mapping[str, Any], prefix: str = layout.FIELD_PREFIX) -> dict[str, int] | None:
    """Slot -> kind of the data key in it, from the headers of the blobs named ``prefix``*
    (``f_``: the full view, ``m_``: the masked view; and the full view's legacy proof, a v2
    blob a format v3 item keeps); None if they disagree. Format v3 blobs name key references,
    not these slots: they are not counted."""
    kinds: dict[str, int] = {}
    for name, value in item.items():
        legacy_proof = prefix == layout.FIELD_PREFIX and name == layout.V3_PROOF
        if not (name.startswith(prefix) or legacy_proof) or "B" not in value:
            continue
        header = parse_blob(bytes(value["B"]))
        if kinds.setdefault(header.slot, header.kind) != header.kind:
            return None
    return kinds


def wrapped_keys(item: Mapping[str, Any]) -> tuple[dict[Place, bytes], dict[Place, int]] | None:
    """Every wrapped data key of an item (both views) and the kind of each (from the blobs'
    headers; a slot no blob names is absent from the kinds); None if headers disagree."""
    try:
        full = slot_kinds(item)
        masked = slot_kinds(item, layout.MASKED_PREFIX)
    except IntegrityError:
        return None
    if full is None or masked is None or any(k not in (KIND_MASKED_TENANT, KIND_MASKED_POOL) for k in masked.values()):
        return None
    kinds: dict[Place, int] = {(FULL, slot): kind for slot, kind in full.items()}
    kinds.update({(MASKED, slot): kind for slot, kind in masked.items()})
    return places(item), kinds


def _tenant_in_scope(item: Mapping[str, Any], plan: RewrapPlan) -> str | None:
    """The item's tenant if the plan covers it (its one tenant, or every tenant), else None."""
    customer_id = layout.customer_of(item[layout.PK]["S"])
    return customer_id if plan.customer_id is None or customer_id == plan.customer_id else None


class _LostRace(Exception):
    """The item changed between read and conditional update."""


def rewrap_processor(items: SlotItems, plan: RewrapPlan, rewrap_map: RewrapMap) -> Processor:
    """Rewrap the slots of a page of items (see the module docstring)."""

    def one(item: Item, counts: Counter[str]) -> None:
        customer_id = _tenant_in_scope(item, plan)
        if customer_id is None:
            return
        if not places(item):
            return
        found = wrapped_keys(item)
        if found is None:
            counts["items_unreadable_headers"] += 1
            return
        slots, kinds = found
        counts["items_seen"] += 1
        new_slots: dict[Place, bytes] = {}
        unreferenced: list[Place] = []
        moved_all = True
        for place, blob in sorted(slots.items()):
            kind = kinds.get(place)
            if kind is None:
                # No blob names it (its fields were all rewritten under other slots since): it
                # opens nothing and its context is unknown, so it goes instead of moving.
                if plan.dry_run:
                    counts["would_remove_unreferenced_slots"] += 1
                else:
                    unreferenced.append(place)
                continue
            if kind in _POOL_KINDS and plan.customer_id is not None:
                counts["pool_slots_left"] += 1
                moved_all = False
                continue
            if rewrap_map.produced(blob):
                counts["slots_already_moved"] += 1
                continue
            if plan.dry_run:
                counts["would_rewrap_slots"] += 1
                continue
            new = rewrap_map.new_blob(blob, encryption_context(plan.app_name, customer_id, kind))
            if new is None:
                counts["slots_not_under_source"] += 1
                moved_all = False
            else:
                new_slots[place] = new
        if not new_slots and not unreferenced:
            return
        target = plan.target_key if moved_all else None
        if not items.update_slots(item, new_slots, target, remove=unreferenced):
            raise _LostRace
        counts["items_rewrapped"] += 1 if new_slots else 0
        counts["unreferenced_slots_removed"] += len(unreferenced)
        counts["slots_rewrapped"] += len(new_slots)
        counts["masked_slots_rewrapped"] += sum(1 for view, _slot in new_slots if view == MASKED)

    def each(item: Item, counts: Counter[str]) -> None:
        current: Item | None = item
        for _attempt in range(UPDATE_ATTEMPTS):
            if current is None:
                counts["items_gone"] += 1
                return
            try:
                one(current, counts)
                return
            except _LostRace:
                counts["concurrent_writes_reread"] += 1
                current = items.get(item_key(item))
        counts["skipped_concurrent"] += 1

    return rewrap_keys.metered(rewrap_map, each)


def verify_processor(plan: RewrapPlan, checker: RewrapMap) -> Processor:
    """Count the slots in scope under the target (``checker`` maps target -> target)."""

    def each(item: Item, counts: Counter[str]) -> None:
        customer_id = _tenant_in_scope(item, plan)
        if customer_id is None:
            return
        found = wrapped_keys(item)
        kinds = found[1] if found is not None else {}
        for place, blob in places(item).items():
            kind = kinds.get(place, KIND_TENANT if place[0] == FULL else KIND_MASKED_TENANT)
            if kind in _POOL_KINDS and plan.customer_id is not None:
                counts["pool_slots_left"] += 1
            elif checker.new_blob(blob, encryption_context(plan.app_name, customer_id, kind)) is None:
                counts["not_under_target"] += 1
            else:
                counts["verified_slots"] += 1
                counts["verified_masked_slots"] += place[0] == MASKED

    return rewrap_keys.metered(checker, each)


def rewrap_segment(
    plan: RewrapPlan,
    run: SegmentRun,
    items: SlotItems,
    reencryptor: Callable[[str, str], ReEncryptor],
    control: Control,
    *,
    keys: KeyEntries | None = None,
    verify: bool = False,
) -> Checkpoint:
    """One segment of a rewrap (or, with ``verify``, of its verify pass): the items' inline
    wrapped keys (records written before format v3), then, with ``keys``, the same segment of
    the key table (format v3: ``service/rewrap_keys.py``, its own checkpoints under
    ``<job>#keys``). ``reencryptor(source, target)`` makes the ReEncrypt capability
    (``keys.reencrypt.KmsReEncryptor`` over a client). One tenant is one partition: segment 0
    queries it, the other segments have nothing to do."""

    def pages(start: Key | None) -> ItemPage:
        return items.page(plan.customer_id, run.segment, run.total_segments, start)

    if verify:
        calls = RewrapMap(reencryptor(plan.target_key, plan.target_key))
        process = verify_processor(plan, calls)
    else:
        calls = RewrapMap(reencryptor(plan.source_key, plan.target_key))
        process = rewrap_processor(items, plan, calls)
    result = run_segment(run.job_id, run.segment, pages, process, control)
    if keys is not None and result.done:
        entries = keys

        def key_pages(start: Key | None) -> ItemPage:
            return entries.page(plan.customer_id, run.segment, run.total_segments, start)

        key_process = (
            rewrap_keys.key_table_verify_processor(plan.app_name, calls)
            if verify
            else rewrap_keys.key_table_processor(keys, plan.target_key, plan.app_name, plan.dry_run, calls)
        )
        done = run_segment(f"{run.job_id}#keys", run.segment, key_pages, key_process, control)
        result.counts.update(done.counts)
        result.done, result.pages = done.done, result.pages + done.pages
    logger.info("rewrap %s segment %s: %s distinct wrapped keys sent to KMS", run.job_id, run.segment, len(calls))
    return result
