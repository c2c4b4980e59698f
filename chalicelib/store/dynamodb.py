"""DynamoDB plumbing for the stores: one table, client calls, error translation, batches
and transactions. Knows no record types; the stores and ``layout`` do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.support.aws_errors import THROTTLED_REASONS, cancellation_codes, error_code, refused, translate
from chalicelib.support.errors import StorageError, ThrottledError

BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
TRANSACT_MAX = 100  # items per TransactWriteItems
_BATCH_GET_ROUNDS = 8
_BATCH_WRITE_ROUNDS = 8


class Cancelled(Exception):
    """A TransactWriteItems was cancelled; ``reasons`` line up with its items."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DynamoDbTable:
    """One table over a low-level boto3 DynamoDB client (injected)."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        consistent_reads: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ddb = dynamodb_client
        self.name = table_name
        self.consistent = consistent_reads
        self.sleep = sleep  # backoff: BatchGetItem's unprocessed keys

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One DynamoDB call; a failed condition stays a ClientError for the caller to judge."""
        try:
            response: dict[str, Any] = getattr(self._ddb, operation)(TableName=self.name, **kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise
            raise translate(exc, "dynamodb", operation, StorageError) from exc
        except BotoCoreError as exc:
            raise translate(exc, "dynamodb", operation, StorageError) from exc
        return response

    def transact(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """TransactWriteItems of (action, arguments) pairs on this table.

        A cancelled transaction is raised as ``Cancelled`` with its reasons, unless
        DynamoDB cancelled it for throttling.
        """
        request = [{action: {"TableName": self.name, **arguments}} for action, arguments in items]
        try:
            self._ddb.transact_write_items(TransactItems=request)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc, "dynamodb", "TransactWriteItems", StorageError) from exc
            reasons = exc.response.get("CancellationReasons") or [{} for _ in items]
            if set(cancellation_codes(exc)) & THROTTLED_REASONS:
                error = ThrottledError("dynamodb is throttling requests; retry later")
                raise refused(exc, "dynamodb", "TransactWriteItems", error) from exc
            raise Cancelled(reasons) from exc
        except BotoCoreError as exc:
            raise translate(exc, "dynamodb", "TransactWriteItems", StorageError) from exc

    def batch_get(
        self, keys: list[dict[str, Any]], projection: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The items that exist among ``keys`` (no duplicates), in no particular order.

        One request per 100 keys; keys DynamoDB leaves unprocessed (throttling, 16 MB
        responses) are retried with backoff. ``projection``: ProjectionExpression and
        ExpressionAttributeNames, to fetch only those attributes.
        """
        for chunk in chunks(keys, BATCH_GET_MAX):
            pending = chunk
            for round_ in range(_BATCH_GET_ROUNDS):
                if round_:
                    self.sleep(min(0.05 * 2**round_, 1.0))
                request = {self.name: {"Keys": pending, "ConsistentRead": self.consistent, **(projection or {})}}
                try:
                    response = self._ddb.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise translate(exc, "dynamodb", "BatchGetItem", StorageError) from exc
                yield from response.get("Responses", {}).get(self.name, [])
                pending = response.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
                if not pending:
                    break
            else:
                raise ThrottledError("the database did not return every record; retry the request")

    def batch_delete(self, keys: list[dict[str, Any]]) -> None:
        """Delete ``keys`` in order, 25 per BatchWriteItem, retrying unprocessed ones."""
        for chunk in chunks(keys, BATCH_WRITE_MAX):
            requests = [{"DeleteRequest": {"Key": key}} for key in chunk]
            for round_ in range(_BATCH_WRITE_ROUNDS):
                if round_:
                    self.sleep(min(0.05 * 2**round_, 1.0))  # back off: unprocessed means throttled
                try:
                    response = self._ddb.batch_write_item(RequestItems={self.name: requests})
                except (ClientError, BotoCoreError) as exc:
                    raise translate(exc, "dynamodb", "BatchWriteItem", StorageError) from exc
                requests = response.get("UnprocessedItems", {}).get(self.name, [])
                if not requests:
                    break
            else:
                raise ThrottledError("the database did not accept every delete; retry the request")


class OnTable:
    """Base of the stores: each works on one ``DynamoDbTable``."""

    def __init__(self, table: DynamoDbTable) -> None:
        self._table = table
