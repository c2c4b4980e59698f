"""Idempotency references: what lets an erasure find the idempotency records of what it erases.

A create with an ``Idempotency-Key`` (a person's POST, a secret's PUT) leaves a Powertools
record (the request's keyed fingerprint and the answer: ids, version, time) for the TTL.
The writer collects each such record id in a reference item of the record it created,
``ref#<tenant>#<kind>#<record id>`` (a string set, ``tables.REF_TARGETS``, with the latest
TTL), in the idempotency table. The person's DELETE, the secret's DELETE and the tenant's
offboarding find the reference and remove it with every record it names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from chalicelib.store import tables
from chalicelib.store.dynamodb import Item, Key, adapter

PAGE_SIZE = 100


class References(Protocol):
    """Offboarding's side: a tenant's references, page by page, and deleting them."""

    def page(
        self, customer_id: str, segment: int, total_segments: int, start: Key | None
    ) -> tuple[list[Item], Key | None]: ...

    def record_keys(self, targets: Iterable[str]) -> list[Key]: ...

    def delete(self, keys: Iterable[Key]) -> int: ...


class DynamoDbReferences:
    """References and the records they name, in the idempotency table."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self.name = table_name

    def add(self, customer_id: str, kind: str, record_id: str, target: str, expires_at: int) -> None:
        """File ``target`` (a Powertools record id) under the record's reference."""
        self._ddb.call(
            "update_item",
            TableName=self.name,
            Key=tables.ref_key(customer_id, kind, record_id),
            UpdateExpression="ADD #targets :target SET #expires = :expires",
            ExpressionAttributeNames={"#targets": tables.REF_TARGETS, "#expires": tables.IDEMPOTENCY_EXPIRATION},
            ExpressionAttributeValues={":target": {"SS": [target]}, ":expires": {"N": str(expires_at)}},
        )

    def forget(self, customer_id: str, kind: str, record_id: str) -> int:
        """Delete the reference and every record it names; how many records went."""
        response = self._ddb.call(
            "delete_item", TableName=self.name, Key=tables.ref_key(customer_id, kind, record_id), ReturnValues="ALL_OLD"
        )
        targets = tables.ref_targets(response.get("Attributes", {}))
        self.delete(self.record_keys(targets))
        return len(targets)

    def page(
        self, customer_id: str, segment: int, total_segments: int, start: Key | None
    ) -> tuple[list[Item], Key | None]:
        """One page of a parallel-scan segment, keeping the tenant's references only."""
        return self._ddb.segment_page(
            self.name,
            segment,
            total_segments,
            start,
            PAGE_SIZE,
            FilterExpression="begins_with(#id, :prefix)",
            ExpressionAttributeNames={"#id": tables.IDEMPOTENCY_ID},
            ExpressionAttributeValues={":prefix": {"S": tables.ref_prefix(customer_id)}},
        )

    @staticmethod
    def record_keys(targets: Iterable[str]) -> list[Key]:
        return [{tables.IDEMPOTENCY_ID: {"S": target}} for target in targets]

    def delete(self, keys: Iterable[Key]) -> int:
        """DeleteItem per key (offboarding's role may delete, not put: no BatchWriteItem)."""
        count = 0
        for key in keys:
            self._ddb.call("delete_item", TableName=self.name, Key=key)
            count += 1
        return count
