"""The PII table (or a restored copy of it) as the bulk jobs see it, page by page.

- ``DynamoDbTenantItems``: one tenant's items by key (offboarding: its role may Query
  keys only, with ``Select`` SPECIFIC_ATTRIBUTES, and DeleteItem; the replay after a
  restore, with the operator's credentials, also reads a secret head's deleting mark);
- ``DynamoDbIndexedScan``: the backfill's parallel scan, through the indexer's projection;
- ``DynamoDbSlotItems``: the rewrap's whole items and its conditional update of the
  wrapped data keys (``slots``, the masked view's ``mk_<slot>``, ``kms_key``).

Every call goes through the adapter (``store.dynamodb``); a page is (items, the key the
next page starts after).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from chalicelib.store import layout
from chalicelib.store.dynamodb import Item, ItemPage, Key, adapter

PAGE_SIZE = 100
# Where a wrapped data key lives: in the ``slots`` map (full view) or in an ``mk_<slot>``
# attribute (masked view).
FULL, MASKED = "full", "masked"
Place = tuple[str, str]  # (FULL or MASKED, slot)
_KEYS_ONLY = {
    "ProjectionExpression": "#pk, #sk",
    "ExpressionAttributeNames": {"#pk": layout.PK, "#sk": layout.SK},
    "Select": "SPECIFIC_ATTRIBUTES",
}


def item_key(item: Mapping[str, Any]) -> Key:
    return {layout.PK: item[layout.PK], layout.SK: item[layout.SK]}


class TenantItems(Protocol):
    """One tenant's items by key (offboarding)."""

    def key_page(self, customer_id: str, start: Key | None) -> ItemPage: ...

    def delete(self, key: Key) -> bool:
        """Delete one item; False when it was not there."""
        ...

    def holds_items(self, customer_id: str) -> bool:
        """Whether any item of the tenant is left (one strongly consistent query)."""
        ...


class RestoredItems(TenantItems, Protocol):
    """What the replay reads besides keys: a secret's items and its head's deleting mark."""

    def secret_items(self, customer_id: str, secret_id: str) -> list[Item]:
        """The secret's head and versions (keys, and the head's ``deleting``)."""
        ...


class DynamoDbTenantItems:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self.name = table_name

    def _query(self, customer_id: str, sort_prefix: str | None, start: Key | None, **kwargs: Any) -> ItemPage:
        condition = layout.key_condition(customer_id, sort_prefix)
        return self._ddb.page("query", self.name, start, ConsistentRead=True, **condition, **kwargs)

    def key_page(self, customer_id: str, start: Key | None) -> ItemPage:
        return self._query(customer_id, None, start, Limit=PAGE_SIZE, **_KEYS_ONLY)

    def delete(self, key: Key) -> bool:
        return self._ddb.conditional(
            "delete_item", TableName=self.name, Key=key, ConditionExpression=f"attribute_exists({layout.PK})"
        )

    def holds_items(self, customer_id: str) -> bool:
        items, _ = self._query(customer_id, None, None, Limit=1, **_KEYS_ONLY)
        return bool(items)

    def secret_items(self, customer_id: str, secret_id: str) -> list[Item]:
        head = layout.secret_head_key(secret_id)
        versions = layout.secret_version_prefix(secret_id)
        found: list[Item] = []
        start: Key | None = None
        projection = {
            "ProjectionExpression": "#pk, #sk, #deleting",
            "ExpressionAttributeNames": {"#pk": layout.PK, "#sk": layout.SK, "#deleting": layout.DELETING},
        }
        while True:
            items, start = self._query(customer_id, head, start, Limit=PAGE_SIZE, **projection)
            # "S#<id>" also prefixes other secrets' keys ("S#<id>x..."): only the head and its versions.
            found += [i for i in items if i[layout.SK]["S"] == head or i[layout.SK]["S"].startswith(versions)]
            if start is None:
                return found


class DynamoDbIndexedScan:
    """The backfill's scan: only the attributes the indexer may read (its IAM policy refuses a
    Scan without this projection, and one that does not say Select SPECIFIC_ATTRIBUTES: IAM fills
    an unsent Select with ALL_ATTRIBUTES, the DynamoDB guide's "Using IAM policy conditions for
    fine-grained access control")."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self.name = table_name

    def scan_page(self, segment: int, total_segments: int, start: Key | None) -> ItemPage:
        return self._ddb.segment_page(
            self.name,
            segment,
            total_segments,
            start,
            PAGE_SIZE,
            Select="SPECIFIC_ATTRIBUTES",
            **layout.indexer_projection(),
        )


# -- rewrap -------------------------------------------------------------------------------


def places(item: Mapping[str, Any]) -> dict[Place, bytes]:
    """Every wrapped data key an item holds, by place (both views)."""
    full = {(FULL, slot): bytes(v["B"]) for slot, v in item.get(layout.SLOTS, {}).get("M", {}).items()}
    prefix = layout.MASKED_SLOT_PREFIX
    masked = {
        (MASKED, name[len(prefix) :]): bytes(v["B"]) for name, v in item.items() if name.startswith(prefix) and "B" in v
    }
    return {**full, **masked}


class SlotItems(Protocol):
    """The rewrap's view: whole items (the slots and the field blobs' headers are needed)."""

    def page(self, customer_id: str | None, segment: int, total_segments: int, start: Key | None) -> ItemPage:
        """One tenant (a query of its partition; segment 0 only) or every tenant (a scan segment)."""
        ...

    def get(self, key: Key) -> Item | None: ...

    def update_slots(
        self,
        item: Item,
        new: Mapping[Place, bytes],
        kms_key: str | None,
        remove: Sequence[Place] = (),
    ) -> bool:
        """Replace the wrapped keys at ``new``, remove those at ``remove`` (and set ``kms_key``
        unless None) on condition that the item's wrapped keys and ``kms_key`` are still as
        in ``item``; False when they changed."""
        ...


class DynamoDbSlotItems:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self.name = table_name

    def page(self, customer_id: str | None, segment: int, total_segments: int, start: Key | None) -> ItemPage:
        if customer_id is None:
            return self._ddb.segment_page(self.name, segment, total_segments, start, PAGE_SIZE)
        if segment != 0:
            return [], None  # one tenant is one partition: segment 0 queries it
        condition = layout.key_condition(customer_id)
        return self._ddb.page("query", self.name, start, Limit=PAGE_SIZE, ConsistentRead=True, **condition)

    def get(self, key: Key) -> Item | None:
        return self._ddb.get(self.name, key)

    def update_slots(
        self, item: Item, new: Mapping[Place, bytes], kms_key: str | None, remove: Sequence[Place] = ()
    ) -> bool:
        old = places(item)
        names: dict[str, str] = {"#slots": layout.SLOTS, "#kms": layout.KMS_KEY}
        values: dict[str, Any] = {}
        sets, conditions, removals = [], [], []
        for i, place in enumerate(remove):  # only as read: a write that filled it again keeps it
            path = _path(place, f"#r{i}", names)
            values[f":rm{i}"] = {"B": old[place]}
            conditions.append(f"{path} = :rm{i}")
            removals.append(path)
        for i, (place, blob) in enumerate(sorted(new.items())):
            path = _path(place, f"#s{i}", names)
            values[f":old{i}"] = {"B": old[place]}
            values[f":new{i}"] = {"B": blob}
            sets.append(f"{path} = :new{i}")
            conditions.append(f"{path} = :old{i}")
        # The whole slot map as read: a write meanwhile adds a slot of its own (size changes) or
        # replaces one (its blob changes), so the condition fails and the item is read again.
        # The masked view's slots likewise: each one read is unchanged, none was added.
        full_count = sum(1 for view, _slot in old if view == FULL)
        if full_count:
            values[":nslots"] = {"N": str(full_count)}
            conditions.append("size(#slots) = :nslots")
        else:
            conditions.append("attribute_not_exists(#slots)")
        for j, attribute in enumerate(layout.MASKED_SLOT_ATTRIBUTES):
            place = (MASKED, attribute[len(layout.MASKED_SLOT_PREFIX) :])
            if place in new:
                continue
            names[f"#m{j}"] = attribute
            if place in old:
                values[f":m{j}"] = {"B": old[place]}
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
        update = " ".join(
            f"{verb} {', '.join(paths)}" for verb, paths in (("SET", sets), ("REMOVE", removals)) if paths
        )
        return self._ddb.conditional(
            "update_item",
            TableName=self.name,
            Key=item_key(item),
            UpdateExpression=update,
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="NONE",
        )


def _path(place: Place, name: str, names: dict[str, str]) -> str:
    view, slot = place
    names[name] = slot if view == FULL else layout.MASKED_SLOT_PREFIX + slot
    return f"#slots.{name}" if view == FULL else name


def restore_point(dynamodb: Any, table_name: str) -> _dt.datetime | None:
    """The moment a restored table holds (DynamoDB's ``RestoreSummary.RestoreDateTime``), or None
    for a table that was not restored."""
    table = adapter(dynamodb).call("describe_table", TableName=table_name).get("Table", {})
    moment = table.get("RestoreSummary", {}).get("RestoreDateTime")
    return moment if isinstance(moment, _dt.datetime) else None
