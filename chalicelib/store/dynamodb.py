"""The one DynamoDB adapter: every DynamoDB call of the stores and the jobs goes through it.

It owns what every table needs and knows no record type (the stores and the layouts do):

- error translation, in one place (``support.aws_errors.translated``): callers see
  pii-vault errors, never botocore's;
- conditional writes: a failed condition is ``ConditionFailed``, carrying the item DynamoDB
  handed back when the request asked for it (``conditional`` answers False instead);
- paging: ``page`` (one Query or Scan page and where the next one starts) and ``items``
  (every page);
- transactions across tables (``transact``): a cancelled one is ``Cancelled`` with its
  reasons, lined up with its actions, unless DynamoDB cancelled it for throttling;
- batches with backoff (``batch_get``, ``batch_delete``).

``DynamoDbTable`` is the adapter bound to one table, for the stores that live on one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.support.aws_errors import THROTTLED_REASONS, cancellation_codes, refused, translated
from chalicelib.support.errors import StorageError, ThrottledError

Item = dict[str, Any]
Key = dict[str, Any]
ItemPage = tuple[list[Item], Key | None]  # a page's items and the key the next page starts after

BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
TRANSACT_MAX = 100  # items per TransactWriteItems
_BATCH_GET_ROUNDS = 8
_BATCH_WRITE_ROUNDS = 8
_CONDITION_FAILED = "ConditionalCheckFailedException"


class ConditionFailed(Exception):
    """A conditional write's condition did not hold; ``item`` is the item as stored when the
    request asked for it (``ReturnValuesOnConditionCheckFailure``), else None; ``error`` the
    AWS answer (for ``aws_errors.refused`` when the caller judges it a failure)."""

    def __init__(self, item: Item | None, error: ClientError) -> None:
        super().__init__("condition failed")
        self.item = item
        self.error = error


class Cancelled(Exception):
    """A TransactWriteItems was cancelled; ``reasons`` line up with its actions; ``error``
    the AWS answer (for ``aws_errors.refused``)."""

    def __init__(self, reasons: list[dict[str, Any]], error: ClientError) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons
        self.error = error


def _condition_failed(exc: ClientError) -> Exception:
    return ConditionFailed(exc.response.get("Item"), exc)


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Dynamo:
    """The adapter over one low-level boto3 DynamoDB client (injected)."""

    def __init__(self, dynamodb_client: Any, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._ddb = dynamodb_client
        self.sleep = sleep  # backoff between batch rounds

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One call (``operation`` in boto3's spelling, e.g. ``put_item``); a failed
        condition raises ``ConditionFailed``, any other failure a pii-vault error."""
        name = "".join(word.capitalize() for word in operation.split("_"))  # AWS's spelling, for logs
        with translated("dynamodb", name, StorageError, raise_for={_CONDITION_FAILED: _condition_failed}):
            response: dict[str, Any] = getattr(self._ddb, operation)(**kwargs)
        return response

    def conditional(self, operation: str, **kwargs: Any) -> bool:
        """A conditional write: True when done, False when its condition failed."""
        try:
            self.call(operation, **kwargs)
        except ConditionFailed:
            return False
        return True

    def get(self, table: str, key: Key, *, consistent: bool = True, **projection: Any) -> Item | None:
        item: Item | None = self.call(
            "get_item", TableName=table, Key=key, ConsistentRead=consistent, **projection
        ).get("Item")
        return item

    def page(self, operation: str, table: str, start: Key | None, **kwargs: Any) -> ItemPage:
        """One page of a ``query`` or ``scan`` from ``start`` (None: the beginning)."""
        resume = {"ExclusiveStartKey": start} if start else {}
        response = self.call(operation, TableName=table, **kwargs, **resume)
        return response.get("Items", []), response.get("LastEvaluatedKey")

    def segment_page(
        self, table: str, segment: int, total_segments: int, start: Key | None, limit: int, **kwargs: Any
    ) -> ItemPage:
        """One strongly consistent page of one segment of a parallel scan (the bulk jobs' frame)."""
        return self.page(
            "scan",
            table,
            start,
            Segment=segment,
            TotalSegments=total_segments,
            Limit=limit,
            ConsistentRead=True,
            **kwargs,
        )

    def items(self, operation: str, table: str, **kwargs: Any) -> Iterator[Item]:
        """Every item of a ``query`` or ``scan``, page after page."""
        start: Key | None = None
        while True:
            items, start = self.page(operation, table, start, **kwargs)
            yield from items
            if start is None:
                return

    def transact(self, actions: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """TransactWriteItems of (action, table, arguments), across any tables, all or nothing."""
        request = [{action: {"TableName": table, **arguments}} for action, table, arguments in actions]

        def cancelled(exc: ClientError) -> Exception:
            reasons = exc.response.get("CancellationReasons") or [{} for _ in actions]
            if set(cancellation_codes(exc)) & THROTTLED_REASONS:
                error = ThrottledError("dynamodb is throttling requests; retry later")
                return refused(exc, "dynamodb", "TransactWriteItems", error)
            return Cancelled(reasons, exc)

        with translated(
            "dynamodb", "TransactWriteItems", StorageError, raise_for={"TransactionCanceledException": cancelled}
        ):
            self._ddb.transact_write_items(TransactItems=request)

    def batch_get(
        self, table: str, keys: Sequence[Key], *, consistent: bool = True, projection: Mapping[str, Any] | None = None
    ) -> Iterator[Item]:
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
                request = {table: {"Keys": pending, "ConsistentRead": consistent, **(projection or {})}}
                response = self.call("batch_get_item", RequestItems=request)
                yield from response.get("Responses", {}).get(table, [])
                pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                if not pending:
                    break
            else:
                raise ThrottledError("the database did not return every record; retry the request")

    def batch_delete(self, table: str, keys: Sequence[Key]) -> None:
        """Delete ``keys`` in order, 25 per BatchWriteItem, retrying unprocessed ones."""
        for chunk in chunks(keys, BATCH_WRITE_MAX):
            requests = [{"DeleteRequest": {"Key": key}} for key in chunk]
            for round_ in range(_BATCH_WRITE_ROUNDS):
                if round_:
                    self.sleep(min(0.05 * 2**round_, 1.0))  # back off: unprocessed means throttled
                response = self.call("batch_write_item", RequestItems={table: requests})
                requests = response.get("UnprocessedItems", {}).get(table, [])
                if not requests:
                    break
            else:
                raise ThrottledError("the database did not accept every delete; retry the request")


def adapter(dynamodb: Any) -> Dynamo:
    """``dynamodb`` as the adapter: a boto3 client is wrapped, an adapter is itself."""
    return dynamodb if isinstance(dynamodb, Dynamo) else Dynamo(dynamodb)


class DynamoDbTable:
    """The adapter bound to one table (a boto3 client or an adapter, injected)."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        *,
        consistent_reads: bool = True,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._dynamo = Dynamo(dynamodb, sleep=sleep) if sleep is not None else adapter(dynamodb)
        self.name = table_name
        self.consistent = consistent_reads

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One call on this table; a failed condition raises ``ConditionFailed``."""
        return self._dynamo.call(operation, TableName=self.name, **kwargs)

    def transact(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """TransactWriteItems of (action, arguments) pairs on this table."""
        self._dynamo.transact([(action, self.name, arguments) for action, arguments in items])

    def batch_get(self, keys: Sequence[Key], projection: Mapping[str, Any] | None = None) -> Iterator[Item]:
        return self._dynamo.batch_get(self.name, keys, consistent=self.consistent, projection=projection)

    def batch_delete(self, keys: Sequence[Key]) -> None:
        self._dynamo.batch_delete(self.name, keys)


class OnTable:
    """Base of the stores: each works on one ``DynamoDbTable``."""

    def __init__(self, table: DynamoDbTable) -> None:
        self._table = table
