"""Email beacons in the PII table: the indexer's one write, the reader's lookup.

The beacon lives on the person item (``beacon``, binary) with the item version it was
computed from (``beacon_version``); a sparse GSI keyed ``pk`` + ``beacon`` finds a
tenant's people by beacon, projecting keys only (the reader then fetches the items
with one BatchGetItem, strongly consistent, and checks the decrypted email).

The indexer reads a person only through ``layout.indexer_projection`` (its IAM policy
allows no other attribute): keys, version and times, key slots, the email's ciphertext,
the beacon. The indexer's UpdateItem names only ``pk``, ``sk``, ``beacon`` and ``beacon_version``
(its IAM policy allows no other attribute): it never touches a field, a key slot or the
record version, and the staleness check is on ``beacon_version``, its own attribute.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol

from chalicelib.store import layout
from chalicelib.store.dynamodb import adapter

BEACON = layout.BEACON
BEACON_VERSION = layout.BEACON_VERSION
BEACON_INDEX = layout.BEACON_INDEX
MAX_MATCHES = 100  # one lookup answers at most this many people (one BatchGetItem)


class BeaconIndex(Protocol):
    def set_beacon(self, customer_id: str, person_id: str, version: int, beacon: bytes) -> bool:
        """Store ``beacon`` computed from ``version``; False when a newer one is there or the item is gone."""
        ...

    def find(self, customer_id: str, beacon: bytes, limit: int = MAX_MATCHES) -> list[str]:
        """Person ids of the tenant carrying ``beacon`` (eventually consistent)."""
        ...


class IndexerStore(BeaconIndex, Protocol):
    def indexed_item(self, customer_id: str, person_id: str) -> dict[str, Any] | None:
        """The person's ``layout.INDEXER_READ_ATTRIBUTES`` (strongly consistent), None when gone."""
        ...


class DynamoDbBeacons:
    """``BeaconIndex`` over the PII table and its beacon GSI (boto3 client injected)."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self._table = table_name

    def set_beacon(self, customer_id: str, person_id: str, version: int, beacon: bytes) -> bool:
        return self._ddb.conditional(
            "update_item",
            TableName=self._table,
            Key=layout.person_key(customer_id, person_id),
            UpdateExpression="SET #b = :b, #bv = :v",
            # Never creates an item (a REMOVE may have overtaken this record), never
            # replaces a beacon computed from a later version (backfill racing the stream).
            ConditionExpression=f"attribute_exists({layout.PK}) AND (attribute_not_exists(#bv) OR #bv < :v)",
            ExpressionAttributeNames={"#b": BEACON, "#bv": BEACON_VERSION},
            ExpressionAttributeValues={":b": {"B": beacon}, ":v": {"N": str(version)}},
        )

    def indexed_item(self, customer_id: str, person_id: str) -> dict[str, Any] | None:
        return self._ddb.get(self._table, layout.person_key(customer_id, person_id), **layout.indexer_projection())

    def find(self, customer_id: str, beacon: bytes, limit: int = MAX_MATCHES) -> list[str]:
        condition = layout.key_condition(customer_id)
        expression = condition["KeyConditionExpression"] + " AND #b = :b"
        values = {**condition["ExpressionAttributeValues"], ":b": {"B": beacon}}
        ids: list[str] = []
        for item in self._ddb.items(
            "query",
            self._table,
            IndexName=BEACON_INDEX,
            KeyConditionExpression=expression,
            ExpressionAttributeNames={"#b": BEACON},
            ExpressionAttributeValues=values,
            Limit=limit,
        ):
            person_id = layout.person_id_of(item[layout.SK]["S"])
            if person_id is not None:
                ids.append(person_id)
            if len(ids) >= limit:
                break
        return ids


def decode_stream_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """A stream image as boto3 returns items: Lambda events carry binaries as base64 text."""
    return {name: _decoded(value) for name, value in image.items()}


def _decoded(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "B" in value and isinstance(value["B"], str):
        return {"B": base64.b64decode(value["B"])}
    if "M" in value:
        return {"M": {k: _decoded(v) for k, v in value["M"].items()}}
    if "L" in value:
        return {"L": [_decoded(v) for v in value["L"]]}
    if "BS" in value:
        return {"BS": [base64.b64decode(v) if isinstance(v, str) else v for v in value["BS"]]}
    return value


def beacon_of(item: Mapping[str, Any]) -> bytes | None:
    value = item.get(BEACON, {}).get("B")
    return None if value is None else bytes(value)


def beacon_version_of(item: Mapping[str, Any]) -> int | None:
    value = item.get(BEACON_VERSION, {}).get("N")
    return None if value is None else int(value)
