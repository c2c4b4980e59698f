"""Erasure that stays erased: the erasure ledger (its own table; layout in ``tables``).

One item per erasure, ids and times only. Who may append what is fixed by the entry's
partition key, which IAM checks (``dynamodb:LeadingKeys``):

- the **writer** appends only its own erasures, dated when it makes them: a person's DELETE
  and its entry are one transaction (never an erased person without an entry, nor an entry
  without the erasure); a secret's DELETE appends once the secret is marked deleted and
  before any of its versions goes;
- **offboarding** alone appends tenant-wide entries (``tenant``, when it starts) and the mark
  that a final query found the tenant empty (``tenant_done``).

A point-in-time restore of the PII table leaves the ledger as it is (another table), and
the replay (``chalicelib.service.replay``) re-applies it to the restored table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.store import layout, tables
from chalicelib.store.dynamodb import Cancelled, Item, Key, adapter
from chalicelib.store.records import condition_failed
from chalicelib.store.references import DynamoDbReferences
from chalicelib.support.aws_errors import refused
from chalicelib.support.errors import StorageError

PERSON = tables.LEDGER_PERSON
SECRET = tables.LEDGER_SECRET
TENANT = tables.LEDGER_TENANT
TENANT_DONE = tables.LEDGER_TENANT_DONE


@dataclass(frozen=True)
class LedgerEntry:
    kind: str  # PERSON | SECRET | TENANT | TENANT_DONE
    customer_id: str
    record_id: str
    erased_at: str
    legacy: bool = False  # appended before partitions named their kind: no IAM held the appender to it

    def key(self) -> Key:
        return tables.ledger_key(self.kind, self.customer_id, self.record_id, self.erased_at)

    def item(self) -> Item:
        return tables.ledger_item(self.kind, self.customer_id, self.record_id, self.erased_at)


def entry_of(item: Mapping[str, Any]) -> LedgerEntry | None:
    """The entry a ledger item holds, or None for an item that is not one (malformed)."""
    try:
        kind, customer_id, record_id, erased_at, legacy = tables.ledger_fields(item)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if kind not in tables.LEDGER_KINDS:
        return None
    return LedgerEntry(kind, customer_id, record_id, erased_at, legacy)


class Erasures(Protocol):
    """The writer's side: its own erasures and the idempotency references of what it created."""

    def erase_person(self, customer_id: str, person_id: str, expected_version: int | None, erased_at: str) -> None:
        """Delete the person and append its ledger entry, all or nothing."""
        ...

    def record_secret_erasure(self, customer_id: str, secret_id: str, erased_at: str) -> None: ...

    def add_reference(self, customer_id: str, kind: str, record_id: str, target: str, expires_at: int) -> None: ...

    def forget_references(self, customer_id: str, kind: str, record_id: str) -> int:
        """Delete every idempotency record the reference collects, and the reference; how many went."""
        ...


class DynamoDbErasures:
    def __init__(self, dynamodb: Any, *, table: str, ledger_table: str, idempotency_table: str) -> None:
        self._ddb = adapter(dynamodb)
        self._table = table
        self._ledger = ledger_table
        self._references = DynamoDbReferences(self._ddb, idempotency_table)

    def erase_person(self, customer_id: str, person_id: str, expected_version: int | None, erased_at: str) -> None:
        delete: dict[str, Any] = {
            "Key": layout.person_key(customer_id, person_id),
            **layout.person_exists_condition(expected_version),
        }
        entry = LedgerEntry(PERSON, customer_id, person_id, erased_at)
        try:
            # botocore gives the call a ClientRequestToken and re-sends it when it retries
            # (a lost answer): DynamoDB then answers success without deleting twice.
            self._ddb.transact([("Delete", self._table, delete), ("Put", self._ledger, {"Item": entry.item()})])
        except Cancelled as cancelled:
            if cancelled.reasons and cancelled.reasons[0].get("Code") == "ConditionalCheckFailed":
                raise condition_failed(expected_version, "person") from None
            error = StorageError("the erasure was not committed; retry the request")
            raise refused(cancelled.error, "dynamodb", "TransactWriteItems", error) from None

    def record_secret_erasure(self, customer_id: str, secret_id: str, erased_at: str) -> None:
        self._ddb.call(
            "put_item", TableName=self._ledger, Item=LedgerEntry(SECRET, customer_id, secret_id, erased_at).item()
        )

    def add_reference(self, customer_id: str, kind: str, record_id: str, target: str, expires_at: int) -> None:
        self._references.add(customer_id, kind, record_id, target, expires_at)

    def forget_references(self, customer_id: str, kind: str, record_id: str) -> int:
        return self._references.forget(customer_id, kind, record_id)


class TenantLedger(Protocol):
    """Offboarding's side: the tenant-wide entries, its alone."""

    def record_tenant_erasure(self, customer_id: str, erased_at: str) -> None: ...

    def record_tenant_empty(self, customer_id: str, at: str) -> None:
        """A final query found no item of the tenant left."""
        ...


class LedgerEntries(Protocol):
    """The replay's side: the entries (one parallel-scan segment a page) and lookups."""

    def page(self, segment: int, total_segments: int, start: Key | None) -> tuple[list[Item], Key | None]: ...

    def holds(self, entry: LedgerEntry) -> bool:
        """Whether this exact entry is in the table (a witness: the ledger as restored to a point)."""
        ...

    def tenant_emptied(self, customer_id: str) -> list[LedgerEntry]:
        """The ``tenant_done`` entries of one tenant."""
        ...


class DynamoDbLedger:
    """``TenantLedger`` and ``LedgerEntries`` over one ledger table (or a copy of it)."""

    PAGE_SIZE = 100

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self.name = table_name

    def _append(self, entry: LedgerEntry) -> None:
        # An entry is written once: a second append of the same key changes nothing.
        self._ddb.conditional(
            "put_item",
            TableName=self.name,
            Item=entry.item(),
            ConditionExpression=f"attribute_not_exists({tables.LEDGER_PK})",
        )

    def record_tenant_erasure(self, customer_id: str, erased_at: str) -> None:
        self._append(LedgerEntry(TENANT, customer_id, customer_id, erased_at))

    def record_tenant_empty(self, customer_id: str, at: str) -> None:
        self._append(LedgerEntry(TENANT_DONE, customer_id, customer_id, at))

    def page(self, segment: int, total_segments: int, start: Key | None) -> tuple[list[Item], Key | None]:
        return self._ddb.segment_page(self.name, segment, total_segments, start, self.PAGE_SIZE)

    def holds(self, entry: LedgerEntry) -> bool:
        key = entry.key() if not entry.legacy else _legacy_key(entry)
        return self._ddb.get(self.name, key) is not None

    def tenant_emptied(self, customer_id: str) -> list[LedgerEntry]:
        items = self._ddb.items(
            "query",
            self.name,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": tables.LEDGER_PK},
            ExpressionAttributeValues={":pk": {"S": tables.ledger_partition(TENANT, customer_id)}},
            ConsistentRead=True,
        )
        entries = (entry_of(item) for item in items)
        return [e for e in entries if e is not None and e.kind == TENANT_DONE and e.customer_id == customer_id]


def _legacy_key(entry: LedgerEntry) -> Key:
    return {
        tables.LEDGER_PK: {"S": entry.customer_id},
        tables.LEDGER_SK: {"S": f"{entry.erased_at}#{entry.kind}#{entry.record_id}"},
    }
