"""The reader fleet's key table in DynamoDB (``chalicelib/keys/fleet.py``, ``fleet_buckets.py``).

Its own small table, no backups (an entry must not outlive its lifetime anywhere), DynamoDB
TTL on the entries' expiry for clean-up (readers check the authenticated expiry themselves):

    b S (hash)   ``d<day>``: the day a format v3 key was made (its reference says it), so a
                 container fetches a day's pool keys with one Query; or ``e<xx>`` for the keys
                 of items written before format v3, by their entry id's first byte
    r B (range)  the key reference (v3) or the entry id (SHA-256 of context and wrapped key)
    e N          the epoch of the fleet sealing key
    x N          the expiry (epoch seconds; the TTL attribute)
    s B          the sealed data key
"""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamodb import DynamoDbTable

BUCKET = "b"
REFERENCE = "r"
EPOCH = "e"
EXPIRES_AT = "x"
SEALED = "s"
TTL = EXPIRES_AT  # the table's TimeToLiveSpecification attribute (infra.specs declares the table)
Entry = tuple[int, int, bytes]  # (epoch, expires_at, sealed): keys.fleet_buckets.BucketEntry's fields


def _blob(value: Any) -> bytes:
    return value if isinstance(value, bytes) else bytes(value)


def _entry(item: dict[str, Any]) -> Entry | None:
    try:
        return int(item[EPOCH]["N"]), int(item[EXPIRES_AT]["N"]), _blob(item[SEALED]["B"])
    except (KeyError, TypeError, ValueError):
        return None  # a malformed entry is no entry: the reader asks the key table and KMS


def _item(bucket: str, ref: bytes, entry: Entry) -> dict[str, Any]:
    return {
        BUCKET: {"S": bucket},
        REFERENCE: {"B": ref},
        EPOCH: {"N": str(entry[0])},
        EXPIRES_AT: {"N": str(entry[1])},
        SEALED: {"B": entry[2]},
    }


class DynamoDbBucketTable:
    """``keys.fleet_buckets.BucketTable``: a day's entries by Query (eventually consistent, paged)."""

    def __init__(self, table: DynamoDbTable) -> None:
        self._table = table

    def query(self, bucket: str) -> dict[bytes, Entry]:
        found: dict[bytes, Entry] = {}
        start: dict[str, Any] = {}
        while True:
            response = self._table.call(
                "query",
                KeyConditionExpression="#b = :b",
                ExpressionAttributeNames={"#b": BUCKET},
                ExpressionAttributeValues={":b": {"S": bucket}},
                **start,
            )
            for item in response.get("Items", []):
                entry = _entry(item)
                if entry is not None and REFERENCE in item:
                    found[_blob(item[REFERENCE]["B"])] = entry
            if "LastEvaluatedKey" not in response:
                return found
            start = {"ExclusiveStartKey": response["LastEvaluatedKey"]}

    def get(self, bucket: str, ref: bytes) -> Entry | None:
        item = self._table.call("get_item", Key={BUCKET: {"S": bucket}, REFERENCE: {"B": ref}}).get("Item")
        return _entry(item) if item else None

    def put(self, bucket: str, ref: bytes, entry: Entry) -> None:
        self._table.call("put_item", Item=_item(bucket, ref, entry))


class DynamoDbFleetTable:
    """``fleet.FleetTable``: the entries of data keys that items written before format v3 carry inline."""

    def __init__(self, table: DynamoDbTable) -> None:
        self._table = table

    @staticmethod
    def _key(entry_id: bytes) -> dict[str, Any]:
        return {BUCKET: {"S": f"e{entry_id[0]:02x}"}, REFERENCE: {"B": entry_id}}

    def get(self, entry_id: bytes) -> dict[str, Any] | None:
        item = self._table.call("get_item", Key=self._key(entry_id)).get("Item")
        entry = _entry(item) if item else None
        if entry is None:
            return None
        return {"epoch": entry[0], "expires_at": entry[1], "sealed": entry[2]}

    def put(self, entry_id: bytes, entry: dict[str, Any]) -> None:
        sealed = (int(entry["epoch"]), int(entry["expires_at"]), bytes(entry["sealed"]))
        self._table.call("put_item", Item={**_item("", entry_id, sealed), **self._key(entry_id)})
