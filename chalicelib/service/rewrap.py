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
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.envelope.format import (
    KIND_MASKED_POOL,
    KIND_MASKED_TENANT,
    KIND_POOL,
    KIND_TENANT,
    encryption_context,
    parse_blob,
)
from chalicelib.service.bulk import PAGE_SIZE, Checkpoint, Checkpoints, Item, Key, PageSource, Processor
from chalicelib.store import layout
from chalicelib.support.aws_errors import conditional_write, error_code, translate
from chalicelib.support.errors import IntegrityError, KeyServiceError, StorageError

logger = logging.getLogger(__name__)

# KMS answers meaning "this blob is not under the key you named" (moto says AccessDenied).
_NOT_UNDER_KEY = frozenset({"IncorrectKeyException", "AccessDeniedException", "InvalidCiphertextException"})
UPDATE_ATTEMPTS = 4
# Every attribute a rewrap's UpdateItem names: the key, the slots, the masked view's slots, the key id.
REWRAP_WRITE_ATTRIBUTES = layout.REWRAP_WRITE_ATTRIBUTES  # the store layout states them (and the IAM policy)
_POOL_KINDS = frozenset({KIND_POOL, KIND_MASKED_POOL})
# Where a wrapped key lives: in the ``slots`` map (full view) or in an ``mk_<slot>`` attribute (masked view).
FULL, MASKED = "full", "masked"
Place = tuple[str, str]  # (FULL or MASKED, slot)


@dataclass(frozen=True)
class RewrapPlan:
    source_key: str
    target_key: str
    customer_id: str | None  # None: every tenant
    app_name: str
    dry_run: bool = False


class KmsReEncryptor:
    """``kms:ReEncrypt`` only: from ``source`` (pinned) to ``target``, same context both sides."""

    def __init__(self, kms_client: Any, source: str, target: str) -> None:
        self._kms = kms_client
        self._source = source
        self._target = target
        self.calls = 0

    def reencrypt(self, blob: bytes, context: Mapping[str, str]) -> bytes | None:
        """The blob under the target, or None when it is not under the source key."""
        self.calls += 1
        try:
            response = self._kms.re_encrypt(
                CiphertextBlob=blob,
                SourceEncryptionContext=dict(context),
                SourceKeyId=self._source,
                DestinationKeyId=self._target,
                DestinationEncryptionContext=dict(context),
            )
        except ClientError as exc:
            if error_code(exc) in _NOT_UNDER_KEY:
                return None
            raise translate(exc, "kms", "ReEncrypt", KeyServiceError) from exc
        except BotoCoreError as exc:
            raise translate(exc, "kms", "ReEncrypt", KeyServiceError) from exc
        if not _same_key(response.get("SourceKeyId", ""), self._source):
            return None  # KMS decides by the blob when a key id is not enforced (moto)
        if not _same_key(response.get("KeyId", ""), self._target):
            raise KeyServiceError("kms ReEncrypt answered with another key than the target")
        new: bytes = response["CiphertextBlob"]
        return new


def _same_key(answered: str, wanted: str) -> bool:
    """KMS answers with ARNs; a plan may name a key by id or ARN."""
    return answered == wanted or answered.endswith(f":key/{wanted}") or answered.endswith(f"/{wanted.split('/')[-1]}")


class RewrapMap:
    """Run-local memory: (context, old blob) -> new blob (None: not under the source)."""

    def __init__(self, reencryptor: KmsReEncryptor) -> None:
        self._reencryptor = reencryptor
        self._done: dict[tuple[tuple[tuple[str, str], ...], bytes], bytes | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._done)

    @property
    def calls(self) -> int:
        return self._reencryptor.calls

    def new_blob(self, blob: bytes, context: Mapping[str, str]) -> bytes | None:
        key = (tuple(sorted(context.items())), blob)
        with self._lock:
            if key in self._done:
                return self._done[key]
        new = self._reencryptor.reencrypt(blob, context)
        with self._lock:
            self._done.setdefault(key, new)
            return self._done[key]

    def produced(self, blob: bytes) -> bool:
        """Is ``blob`` one this run made (already under the target)?"""
        with self._lock:
            return blob in {v for v in self._done.values() if v is not None}


def slot_kinds(item: Mapping[str, Any], prefix: str = layout.FIELD_PREFIX) -> dict[str, int] | None:
    """Slot -> kind of the data key in it, from the headers of the blobs named ``prefix``*
    (``f_``: the full view, ``m_``: the masked view); None if they disagree."""
    kinds: dict[str, int] = {}
    for name, value in item.items():
        if not name.startswith(prefix) or "B" not in value:
            continue
        header = parse_blob(bytes(value["B"]))
        if kinds.setdefault(header.slot, header.kind) != header.kind:
            return None
    return kinds


def _slots(item: Mapping[str, Any]) -> dict[str, bytes]:
    return {name: bytes(v["B"]) for name, v in item.get(layout.SLOTS, {}).get("M", {}).items()}


def _masked_slots(item: Mapping[str, Any]) -> dict[str, bytes]:
    prefix = layout.MASKED_SLOT_PREFIX
    return {name[len(prefix) :]: bytes(v["B"]) for name, v in item.items() if name.startswith(prefix) and "B" in v}


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
    return _places(item), kinds


def _places(item: Mapping[str, Any]) -> dict[Place, bytes]:
    blobs: dict[Place, bytes] = {(FULL, slot): blob for slot, blob in _slots(item).items()}
    blobs.update({(MASKED, slot): blob for slot, blob in _masked_slots(item).items()})
    return blobs


def _tenant_of(item: Mapping[str, Any]) -> str | None:
    return layout.customer_of(item[layout.PK]["S"])


def rewrap_processor(
    ddb: Any, table: str, plan: RewrapPlan, rewrap_map: RewrapMap, *, reread: Callable[[Key], Item | None]
) -> Processor:
    """Rewrap the slots of a page of items (see the module docstring)."""

    def one(item: Item, counts: Counter[str]) -> None:
        customer_id = _tenant_of(item)
        if customer_id is None or (plan.customer_id is not None and customer_id != plan.customer_id):
            return
        if not _slots(item) and not _masked_slots(item):
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
        if _conditional_update(ddb, table, item, slots, new_slots, target, remove=unreferenced):
            counts["items_rewrapped"] += 1 if new_slots else 0
            counts["unreferenced_slots_removed"] += len(unreferenced)
            counts["slots_rewrapped"] += len(new_slots)
            counts["masked_slots_rewrapped"] += sum(1 for view, _slot in new_slots if view == MASKED)
        else:
            raise _LostRace

    def process(items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        calls_before = rewrap_map.calls
        for item in items:
            current: Item | None = item
            for _attempt in range(UPDATE_ATTEMPTS):
                if current is None:
                    counts["items_gone"] += 1
                    break
                try:
                    one(current, counts)
                    break
                except _LostRace:
                    counts["concurrent_writes_reread"] += 1
                    current = reread({layout.PK: item[layout.PK], layout.SK: item[layout.SK]})
            else:
                counts["skipped_concurrent"] += 1
        counts["reencrypt_calls"] += rewrap_map.calls - calls_before
        return counts

    return process


class _LostRace(Exception):
    """The item changed between read and conditional update."""


def _conditional_update(
    ddb: Any,
    table: str,
    item: Item,
    old_slots: Mapping[Place, bytes],
    new_slots: Mapping[Place, bytes],
    kms_key: str | None,
    *,
    remove: Sequence[Place] = (),
) -> bool:
    names: dict[str, str] = {"#slots": layout.SLOTS, "#kms": layout.KMS_KEY}
    values: dict[str, Any] = {}
    sets, conditions, removals = [], [], []
    for i, (view, slot) in enumerate(remove):  # only as read: a write that filled it again keeps it
        names[f"#r{i}"] = slot if view == FULL else layout.MASKED_SLOT_PREFIX + slot
        path = f"#slots.#r{i}" if view == FULL else f"#r{i}"
        values[f":rm{i}"] = {"B": old_slots[(view, slot)]}
        conditions.append(f"{path} = :rm{i}")
        removals.append(path)
    for i, ((view, slot), blob) in enumerate(sorted(new_slots.items())):
        values[f":old{i}"] = {"B": old_slots[(view, slot)]}
        values[f":new{i}"] = {"B": blob}
        if view == FULL:
            names[f"#s{i}"] = slot
            path = f"#slots.#s{i}"
        else:
            names[f"#s{i}"] = layout.MASKED_SLOT_PREFIX + slot
            path = f"#s{i}"
        sets.append(f"{path} = :new{i}")
        conditions.append(f"{path} = :old{i}")
    # The whole slot map as read: a write meanwhile adds a slot of its own (size changes) or
    # replaces one (its blob changes), so the condition fails and the item is read again.
    # The masked view's slots likewise: each one read is unchanged, none was added.
    full_count = sum(1 for view, _slot in old_slots if view == FULL)
    if full_count:
        values[":nslots"] = {"N": str(full_count)}
        conditions.append("size(#slots) = :nslots")
    else:
        conditions.append("attribute_not_exists(#slots)")
    masked_read = {slot for view, slot in old_slots if view == MASKED}
    for j, attribute in enumerate(layout.MASKED_SLOT_ATTRIBUTES):
        slot = attribute[len(layout.MASKED_SLOT_PREFIX) :]
        if (MASKED, slot) in new_slots:
            continue
        names[f"#m{j}"] = attribute
        if slot in masked_read:
            values[f":m{j}"] = {"B": old_slots[(MASKED, slot)]}
            conditions.append(f"#m{j} = :m{j}")
        else:
            conditions.append(f"attribute_not_exists(#m{j})")
    old_kms = item.get(layout.KMS_KEY, {}).get("S")
    if old_kms is None:
        conditions.append("attribute_not_exists(#kms)")
    else:
        values[":oldkms"] = {"S": old_kms}
        conditions.append("#kms = :oldkms")
    if kms_key is not None:
        values[":kms"] = {"S": kms_key}
        sets.append("#kms = :kms")
    return conditional_write(
        "UpdateItem",
        lambda: ddb.update_item(
            TableName=table,
            Key={layout.PK: item[layout.PK], layout.SK: item[layout.SK]},
            UpdateExpression=" ".join(
                f"{verb} {', '.join(paths)}" for verb, paths in (("SET", sets), ("REMOVE", removals)) if paths
            ),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="NONE",
        ),
    )


def verify_processor(plan: RewrapPlan, checker: RewrapMap) -> Processor:
    """Count the slots in scope under the target (``checker`` maps target -> target)."""

    def process(items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        calls_before = checker.calls
        for item in items:
            customer_id = _tenant_of(item)
            if customer_id is None or (plan.customer_id is not None and customer_id != plan.customer_id):
                continue
            found = wrapped_keys(item)
            kinds = found[1] if found is not None else {}
            for place, blob in _places(item).items():
                kind = kinds.get(place, KIND_TENANT if place[0] == FULL else KIND_MASKED_TENANT)
                if kind in _POOL_KINDS and plan.customer_id is not None:
                    counts["pool_slots_left"] += 1
                elif checker.new_blob(blob, encryption_context(plan.app_name, customer_id, kind)) is None:
                    counts["not_under_target"] += 1
                else:
                    counts["verified_slots"] += 1
                    counts["verified_masked_slots"] += place[0] == MASKED
        counts["reencrypt_calls"] += checker.calls - calls_before
        return counts

    return process


def get_item(ddb: Any, table: str) -> Callable[[Key], Item | None]:
    def read(key: Key) -> Item | None:
        try:
            found: Item | None = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "dynamodb", "GetItem", StorageError) from exc
        return found

    return read


def tenant_items(ddb: Any, table: str, customer_id: str) -> PageSource:
    """Every item of one tenant, whole (the slots and the field blobs' headers are needed)."""

    def page(start: Key | None) -> tuple[list[Item], Key | None]:
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        try:
            response = ddb.query(
                TableName=table, Limit=PAGE_SIZE, ConsistentRead=True, **layout.key_condition(customer_id), **kwargs
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "dynamodb", "Query", StorageError) from exc
        return response.get("Items", []), response.get("LastEvaluatedKey")

    return page


def rewrap_segment(
    plan: RewrapPlan,
    job_id: str,
    segment: int,
    total_segments: int,
    ddb: Any,
    kms: Any,
    *,
    table: str,
    checkpoints: Checkpoints,
    verify: bool = False,
    out_of_time: Callable[[], bool] = lambda: False,
    progress: Callable[[Checkpoint], None] = lambda _c: None,
) -> Checkpoint:
    """One segment of a rewrap (or, with ``verify``, of its verify pass). One tenant is one
    partition: segment 0 queries it, the other segments have nothing to do."""
    from chalicelib.service.bulk import run_segment, scan_pages

    if plan.customer_id is None:
        pages = scan_pages(ddb, table, segment, total_segments)
    elif segment == 0:
        pages = tenant_items(ddb, table, plan.customer_id)
    else:
        pages = _nothing
    if verify:
        checker = RewrapMap(KmsReEncryptor(kms, plan.target_key, plan.target_key))
        process = verify_processor(plan, checker)
        calls = checker
    else:
        reencryptor = KmsReEncryptor(kms, plan.source_key, plan.target_key)
        rewrap_map = RewrapMap(reencryptor)
        process = rewrap_processor(ddb, table, plan, rewrap_map, reread=get_item(ddb, table))
        calls = rewrap_map
    result = run_segment(job_id, segment, pages, process, checkpoints, out_of_time=out_of_time, progress=progress)
    logger.info("rewrap %s segment %s: %s distinct wrapped keys sent to KMS", job_id, segment, len(calls))
    return result


def _nothing(_start: Key | None) -> tuple[list[Item], Key | None]:
    return [], None
