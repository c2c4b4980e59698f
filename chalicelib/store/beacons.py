"""Email beacons in a table of their own: the indexer's only writes, the reader's lookup.

One beacon item per indexed person (``layout`` "email beacons"): the beacon and the person
version it was computed from, under the person's own key; the table's GSI finds a
tenant's people by beacon (keys only). The reader then fetches the candidates from the
PII table (one BatchGetItem, strongly consistent) and keeps only those whose decrypted
email matches, so a stale, planted or colliding beacon never answers.

Who may do what (docs/find-and-forget.md): the indexer writes this table and nothing of
the PII table; the reader queries the index; the writer has no access. The PII table holds
no beacon, so nothing the writer can read back (a failed conditional write's ``ALL_OLD``)
lets it test an email guess.

The indexer reads a person only through ``layout.indexer_projection`` (its IAM policy
allows no other attribute): keys, version and times, key slots, the email's ciphertext.
A beacon write never goes backwards (a backfill racing the stream), and a person's REMOVE
leaves a tombstone (``gone``, expiring after ``TOMBSTONE_SECONDS``) that refuses any later
beacon, so a late write cannot bring an erased person's beacon back.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from chalicelib.store import layout
from chalicelib.store.dynamodb import adapter

MAX_MATCHES = 100  # one lookup answers at most this many people (one BatchGetItem)
# How long a REMOVE's tombstone refuses late beacon writes (a backfill segment runs at most 15 min).
TOMBSTONE_SECONDS = 86_400


class BeaconIndex(Protocol):
    def find(self, customer_id: str, beacon: bytes, limit: int = MAX_MATCHES) -> list[str]:
        """Person ids of the tenant carrying ``beacon`` (eventually consistent)."""
        ...


class BeaconWrites(Protocol):
    def set_beacon(self, customer_id: str, person_id: str, version: int, beacon: bytes) -> bool:
        """Store ``beacon`` computed from ``version``; False when one from this or a later version
        is there, or the person was removed."""
        ...

    def forget(self, customer_id: str, person_id: str) -> None:
        """The person was removed: drop its beacon and refuse later ones (a tombstone)."""
        ...


class IndexerStore(BeaconWrites, Protocol):
    def indexed_item(self, customer_id: str, person_id: str) -> dict[str, Any] | None:
        """The person's ``layout.INDEXER_READ_ATTRIBUTES`` (strongly consistent), None when gone."""
        ...


class DynamoDbBeacons:
    """The reader's ``BeaconIndex``: a Query of the beacon table's GSI (client or adapter injected)."""

    def __init__(self, dynamodb: Any, beacons_table: str) -> None:
        self._ddb = adapter(dynamodb)
        self._beacons = beacons_table

    def find(self, customer_id: str, beacon: bytes, limit: int = MAX_MATCHES) -> list[str]:
        ids: list[str] = []
        for item in self._ddb.items(
            "query",
            self._beacons,
            IndexName=layout.BEACON_INDEX,
            Limit=limit,
            **layout.beacon_condition(customer_id, beacon),
        ):
            person_id = layout.person_id_of(item[layout.SK]["S"])
            if person_id is not None:
                ids.append(person_id)
            if len(ids) >= limit:
                break
        return ids


class DynamoDbIndexerStore:
    """The indexer's ``IndexerStore``: projected reads of the PII table, writes of the beacon table."""

    def __init__(
        self, dynamodb: Any, table: str, beacons_table: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._ddb = adapter(dynamodb)
        self._table = table
        self._beacons = beacons_table
        self._clock = clock

    def indexed_item(self, customer_id: str, person_id: str) -> dict[str, Any] | None:
        return self._ddb.get(self._table, layout.person_key(customer_id, person_id), **layout.indexer_projection())

    def set_beacon(self, customer_id: str, person_id: str, version: int, beacon: bytes) -> bool:
        return self._ddb.conditional(
            "update_item",
            TableName=self._beacons,
            Key=layout.person_key(customer_id, person_id),
            UpdateExpression="SET #b = :b, #v = :v",
            # Never over a beacon from this or a later version (a backfill racing the
            # stream, a record delivered twice), never after the person's REMOVE.
            ConditionExpression="attribute_not_exists(#gone) AND (attribute_not_exists(#v) OR #v < :v)",
            ExpressionAttributeNames={"#b": layout.BEACON, "#v": layout.BEACON_VERSION, "#gone": layout.BEACON_GONE},
            ExpressionAttributeValues={":b": {"B": beacon}, ":v": {"N": str(version)}},
        )

    def forget(self, customer_id: str, person_id: str) -> None:
        expires = int(self._clock()) + TOMBSTONE_SECONDS
        self._ddb.call(
            "update_item",
            TableName=self._beacons,
            Key=layout.person_key(customer_id, person_id),
            UpdateExpression="SET #gone = :gone, #ttl = :ttl REMOVE #b",
            ExpressionAttributeNames={"#gone": layout.BEACON_GONE, "#ttl": layout.BEACON_TTL, "#b": layout.BEACON},
            ExpressionAttributeValues={":gone": {"BOOL": True}, ":ttl": {"N": str(expires)}},
        )


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
