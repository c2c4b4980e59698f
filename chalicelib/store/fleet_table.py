"""The reader fleet's key table in DynamoDB (``chalicelib.keys.fleet.FleetTable``).

Its own small table, keyed by entry id (binary), with DynamoDB TTL on ``ttl`` for
clean-up (the reader checks the authenticated expiry itself) and no backups: an
entry must not outlive its lifetime anywhere.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamodb import DynamoDbTable

KEY = "id"
EPOCH = "epoch"
EXPIRES_AT = "expires_at"
SEALED = "sealed"
TTL = "ttl"  # the table's TimeToLiveSpecification attribute (infra.specs declares the table)


class DynamoDbFleetTable:
    def __init__(self, table: DynamoDbTable) -> None:
        self._table = table

    def get(self, entry_id: bytes) -> dict[str, Any] | None:
        item = self._table.call("get_item", Key={KEY: {"B": entry_id}}).get("Item")
        if not item:
            return None
        return {
            EPOCH: item.get(EPOCH, {}).get("N"),
            EXPIRES_AT: item.get(EXPIRES_AT, {}).get("N"),
            SEALED: item.get(SEALED, {}).get("B"),
        }

    def put(self, entry_id: bytes, entry: dict[str, Any]) -> None:
        self._table.call(
            "put_item",
            Item={
                KEY: {"B": entry_id},
                EPOCH: {"N": str(entry[EPOCH])},
                EXPIRES_AT: {"N": str(entry[EXPIRES_AT])},
                SEALED: {"B": entry[SEALED]},
                TTL: {"N": str(entry[EXPIRES_AT])},
            },
        )
