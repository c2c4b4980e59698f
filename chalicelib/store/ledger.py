"""Erasure that stays erased: the erasure ledger and the idempotency references.

- Ledger (its own table): one item per erasure, ``(customer, kind, record id, time)``,
  ids and times only. A person's DELETE and its ledger entry are one transaction, so a
  person is never erased without an entry nor has an entry without being erased. A
  point-in-time restore of the PII table leaves the ledger as it is (another table),
  and ``python -m tools.jobs restore-replay`` re-applies it to the restored table.
- Idempotency references: a create with an ``Idempotency-Key`` leaves a Powertools
  record (request fingerprint and response: the new id) for the TTL. The writer adds a
  reference item ``ref#<tenant>#<kind>#<id> -> <Powertools id>`` with the same TTL, so
  the DELETE of that record, and a tenant's offboarding, find and remove it.
"""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.store import layout
from chalicelib.store.records import condition_failed
from chalicelib.support.aws_errors import THROTTLED_REASONS, cancellation_codes, error_code, refused, translate
from chalicelib.support.errors import StorageError, ThrottledError

PERSON = "person"
SECRET = "secret"  # noqa: S105 - a record kind
TENANT = "tenant"


class Erasures(Protocol):
    def erase_person(self, customer_id: str, person_id: str, expected_version: int | None, erased_at: str) -> None:
        """Delete the person and append its ledger entry, all or nothing."""
        ...

    def record(self, customer_id: str, kind: str, record_id: str, erased_at: str) -> None: ...

    def add_reference(self, customer_id: str, kind: str, record_id: str, target: str, expires_at: int) -> None: ...

    def forget_references(self, customer_id: str, kind: str, record_id: str) -> int:
        """Delete the idempotency record referring to the record, and the reference; how many went."""
        ...


class DynamoDbErasures:
    def __init__(self, dynamodb_client: Any, *, table: str, ledger_table: str, idempotency_table: str) -> None:
        self._ddb = dynamodb_client
        self._table = table
        self._ledger = ledger_table
        self._idempotency = idempotency_table

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._ddb, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "dynamodb", operation, StorageError) from exc
        return response

    def erase_person(self, customer_id: str, person_id: str, expected_version: int | None, erased_at: str) -> None:
        delete: dict[str, Any] = {
            "TableName": self._table,
            "Key": layout.person_key(customer_id, person_id),
            "ConditionExpression": f"attribute_exists({layout.PK})",
        }
        if expected_version is not None:
            delete["ConditionExpression"] += " AND #version = :expected"
            delete["ExpressionAttributeNames"] = {"#version": layout.VERSION}
            delete["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
        put = {"TableName": self._ledger, "Item": layout.ledger_item(customer_id, PERSON, person_id, erased_at)}
        try:
            # botocore gives the call a ClientRequestToken and re-sends it when it retries
            # (a lost answer): DynamoDB then answers success without deleting twice.
            self._ddb.transact_write_items(TransactItems=[{"Delete": delete}, {"Put": put}])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc, "dynamodb", "TransactWriteItems", StorageError) from exc
            codes = cancellation_codes(exc)
            if set(codes) & THROTTLED_REASONS:
                raise refused(
                    exc,
                    "dynamodb",
                    "TransactWriteItems",
                    ThrottledError("dynamodb is throttling requests; retry later"),
                ) from exc
            if codes and codes[0] == "ConditionalCheckFailed":
                raise condition_failed(expected_version, "person") from exc
            raise refused(
                exc, "dynamodb", "TransactWriteItems", StorageError("the erasure was not committed; retry the request")
            ) from exc
        except BotoCoreError as exc:
            raise translate(exc, "dynamodb", "TransactWriteItems", StorageError) from exc

    def record(self, customer_id: str, kind: str, record_id: str, erased_at: str) -> None:
        self._call("put_item", TableName=self._ledger, Item=layout.ledger_item(customer_id, kind, record_id, erased_at))

    def add_reference(self, customer_id: str, kind: str, record_id: str, target: str, expires_at: int) -> None:
        item = {
            **layout.ref_key(customer_id, kind, record_id),
            layout.REF_TARGET: {"S": target},
            layout.IDEMPOTENCY_EXPIRATION: {"N": str(expires_at)},
        }
        self._call("put_item", TableName=self._idempotency, Item=item)

    def forget_references(self, customer_id: str, kind: str, record_id: str) -> int:
        response = self._call(
            "delete_item",
            TableName=self._idempotency,
            Key=layout.ref_key(customer_id, kind, record_id),
            ReturnValues="ALL_OLD",
        )
        target = response.get("Attributes", {}).get(layout.REF_TARGET, {}).get("S")
        if target is None:
            return 0
        self._call("delete_item", TableName=self._idempotency, Key={layout.IDEMPOTENCY_ID: {"S": target}})
        return 1
