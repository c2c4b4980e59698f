"""The key table (``<table>-keys``): each data key's wrapped form, filed once by reference.

Format v3 person items name their data keys by 16-byte reference (``envelope/key_ref.py``)
instead of repeating the ~184-byte KMS ciphertext in every item. The wrapped keys live here:

    partition  p S   the key's encryption context: ``pool`` or ``C#<tenant>``, prefixed ``masked/`` for
                     the masked view (so IAM can give each view's readers its own partitions, by
                     ``dynamodb:LeadingKeys``), and a tenant's own keys are one Query away
    reference  r B   the key reference (range key)
    w B              the KMS-wrapped data key
    k S              the KMS key that wrapped it (rewrap keeps it current)
    t S              when it was filed

The writer files a key once, when it makes it (PutItem, conditional on absence: a reference
names one key, so a repeat changes nothing); readers GetItem it (strongly consistent: the
writer filed it before any record named it) when neither their cache nor the fleet holds the
key, and check what KMS unwraps against the reference; the rewrap job moves entries to another
KMS key. Losing this table loses every v3 record: point-in-time recovery and deletion
protection, like the PII table. Data keys of a tenant's own KMS key stay unreadable once that
key is deleted, here and in every backup (crypto-shredding).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Protocol

from chalicelib.envelope.format import MASKED_VIEW, VIEW_KEY, WrappedKey
from chalicelib.store.dynamodb import ConditionFailed, DynamoDbTable, Item, ItemPage, Key, adapter
from chalicelib.store.layout import customer_of, partition_key

PARTITION = "p"
REFERENCE = "r"
WRAPPED = "w"
KMS_KEY = "k"
FILED_AT = "t"
POOL_PARTITION = "pool"
MASKED_PARTITION_PREFIX = MASKED_VIEW + "/"
# dynamodb:LeadingKeys patterns of each view's partitions (the stages' IAM conditions).
FULL_VIEW_PARTITIONS = (POOL_PARTITION, partition_key("*"))
MASKED_VIEW_PARTITIONS = (MASKED_PARTITION_PREFIX + "*",)
PAGE_SIZE = 100  # entries per page of the rewrap
_PARTITION_INDEX = "#partition"  # a tenant's page position: which of its partitions


def partition_of(context: Mapping[str, str]) -> str:
    """The partition of a data key wrapped under ``context`` (its scope or tenant, and its view)."""
    tenant = context.get("customer_id")
    base = partition_key(tenant) if tenant else POOL_PARTITION
    return (MASKED_PARTITION_PREFIX if context.get(VIEW_KEY) == MASKED_VIEW else "") + base


def context_of(partition: str, app_name: str) -> dict[str, str] | None:
    """The encryption context the keys of ``partition`` are wrapped under (None: not a partition
    pii-vault writes)."""
    masked = partition.startswith(MASKED_PARTITION_PREFIX)
    base = partition[len(MASKED_PARTITION_PREFIX) :] if masked else partition
    tenant = customer_of(base)
    if base == POOL_PARTITION:
        context = {"app": app_name, "scope": "pool"}
    elif tenant:
        context = {"app": app_name, "customer_id": tenant}
    else:
        return None
    return {**context, VIEW_KEY: MASKED_VIEW} if masked else context


def tenant_partitions(customer_id: str) -> tuple[str, str]:
    """The partitions of a tenant's own (tenant-scoped) data keys: full and masked view."""
    return partition_key(customer_id), MASKED_PARTITION_PREFIX + partition_key(customer_id)


def entry_key(partition: str, ref: bytes) -> dict[str, Any]:
    return {PARTITION: {"S": partition}, REFERENCE: {"B": ref}}


class DynamoDbKeyTable:
    """``keys.refs.KeyTable`` over DynamoDB."""

    def __init__(self, table: DynamoDbTable) -> None:
        self._table = table

    def put(self, context: Mapping[str, str], ref: bytes, wrapped: WrappedKey) -> None:
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        try:
            self._table.call(
                "put_item",
                Item={
                    **entry_key(partition_of(context), ref),
                    WRAPPED: {"B": wrapped.blob},
                    KMS_KEY: {"S": wrapped.key_id},
                    FILED_AT: {"S": now},
                },
                ConditionExpression=f"attribute_not_exists({PARTITION})",
            )
        except ConditionFailed:
            return  # already filed: a reference names one data key

    def get(self, context: Mapping[str, str], ref: bytes) -> bytes | None:
        item = self._table.call("get_item", Key=entry_key(partition_of(context), ref), ConsistentRead=True).get("Item")
        if not item or WRAPPED not in item:
            return None
        return wrapped_of(item)


def wrapped_of(entry: Mapping[str, Any]) -> bytes:
    blob = entry[WRAPPED]["B"]
    return blob if isinstance(blob, bytes) else bytes(blob)


# -- the rewrap's side (chalicelib/service/rewrap_keys.py) ----------------------------------


class KeyEntries(Protocol):
    """The key table's entries as the rewrap job walks them, page by page."""

    def page(self, customer_id: str | None, segment: int, total_segments: int, start: Key | None) -> ItemPage:
        """A parallel-scan segment (every tenant), or (one tenant, segment 0) its partitions."""
        ...

    def rewrap(self, entry: Item, new: bytes, kms_key: str) -> bool:
        """Replace the entry's wrapped key by ``new`` (under ``kms_key``) if it still holds the
        one read; False when it changed meanwhile."""
        ...


class DynamoDbKeyEntries:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self.name = table_name

    def page(self, customer_id: str | None, segment: int, total_segments: int, start: Key | None) -> ItemPage:
        if customer_id is None:
            scan = {"Segment": segment, "TotalSegments": total_segments}
            return self._ddb.page("scan", self.name, start, Limit=PAGE_SIZE, ConsistentRead=True, **scan)
        partitions = tenant_partitions(customer_id) if segment == 0 else ()
        # The position across a tenant's partitions: which one, and where in it.
        position = dict(start or {})
        index = int(position.pop(_PARTITION_INDEX, {"N": "0"})["N"])
        while index < len(partitions):
            items, last = self._ddb.page(
                "query",
                self.name,
                position or None,
                Limit=PAGE_SIZE,
                ConsistentRead=True,
                KeyConditionExpression="#p = :p",
                ExpressionAttributeNames={"#p": PARTITION},
                ExpressionAttributeValues={":p": {"S": partitions[index]}},
            )
            if last is not None:
                return items, {**last, _PARTITION_INDEX: {"N": str(index)}}
            index, position = index + 1, {}
            if items:
                return items, ({_PARTITION_INDEX: {"N": str(index)}} if index < len(partitions) else None)
        return [], None

    def rewrap(self, entry: Item, new: bytes, kms_key: str) -> bool:
        return self._ddb.conditional(
            "update_item",
            TableName=self.name,
            Key={PARTITION: entry[PARTITION], REFERENCE: entry[REFERENCE]},
            UpdateExpression="SET #w = :new, #k = :target",
            ConditionExpression="#w = :old",
            ExpressionAttributeNames={"#w": WRAPPED, "#k": KMS_KEY},
            ExpressionAttributeValues={":new": {"B": new}, ":old": {"B": wrapped_of(entry)}, ":target": {"S": kms_key}},
            ReturnValues="NONE",
        )
