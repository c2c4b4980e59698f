"""People in DynamoDB: conditional writes, version counters, pages and multi-get.

The writer never reads an item (its role has no GetItem/Query): every write is a
single conditional Put/Update/Delete. An update names the shape it builds on (the version
it replaces and how the creation time is vouched for), because the sealed metadata it
writes binds them; when the item is otherwise, the failed condition hands back the stored
item (``ReturnValuesOnConditionCheckFailure``) and ``PersonVersionConflict`` carries its
shape to the service (``person_item.person_shape_of``: a stripped record is an integrity error).

A write can meet itself: botocore retries a Put/Update whose answer did not arrive
(timeout, dropped connection, 5xx) although DynamoDB had applied it, and the retry's
condition then fails on our own item. The item handed back tells: it holds this write's
version and its sealed metadata blob (random bytes per attempt), and the write is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.store import layout
from chalicelib.store.dynamodb import ConditionFailed, DynamoDbTable, OnTable
from chalicelib.store.person_item import (
    is_person_write,
    person_from_item,
    person_item,
    person_shape_of,
    person_update,
)
from chalicelib.store.records import Page, PersonRecord, PersonVersionConflict, PersonWrite, condition_failed
from chalicelib.support.aws_errors import refused
from chalicelib.support.errors import StorageError


class DynamoDbPeople(OnTable):
    """``PeopleStore`` over one DynamoDB table."""

    def create_person(self, record: PersonRecord) -> None:
        try:
            self._table.call(
                "put_item",
                Item=person_item(record),
                ConditionExpression=f"attribute_not_exists({layout.PK})",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as exc:
            if is_person_write(exc.item, record.version, record.fields):
                return  # botocore's retry of this very put, whose first answer was lost (issue 19)
            # Ids are 128-bit random: a collision means a bug, not bad luck.
            error = StorageError("a record with this id already exists")
            raise refused(exc.error, "dynamodb", "PutItem", error) from exc

    def update_person(self, write: PersonWrite) -> int:
        try:
            self._table.call(
                "update_item",
                Key=layout.person_key(write.customer_id, write.person_id),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **person_update(write),
            )
        except ConditionFailed as exc:
            if is_person_write(exc.item, write.version, write.fields):
                return write.version  # botocore's retry of this very update, whose first answer was lost
            raise PersonVersionConflict(person_shape_of(exc.item)) from exc
        return write.version

    def delete_person(self, customer_id: str, person_id: str, expected_version: int | None) -> None:
        try:
            self._table.call(
                "delete_item",
                Key=layout.person_key(customer_id, person_id),
                **layout.person_exists_condition(expected_version),
            )
        except ConditionFailed as exc:
            raise condition_failed(expected_version, "person") from exc

    def get_person(self, customer_id: str, person_id: str) -> PersonRecord | None:
        response = self._table.call(
            "get_item", Key=layout.person_key(customer_id, person_id), ConsistentRead=self._table.consistent
        )
        item = response.get("Item")
        return person_from_item(customer_id, item) if item else None

    def list_people(self, customer_id: str, limit: int, token: str | None) -> Page:
        return query_page(self._table, customer_id, limit, token, layout.people_condition(customer_id))

    def get_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]:
        """The people that exist among ``person_ids``, in the order asked, via BatchGetItem."""
        wanted = list(dict.fromkeys(person_ids))  # BatchGetItem refuses duplicate keys
        keys = [layout.person_key(customer_id, person_id) for person_id in wanted]
        found = {
            record.person_id: record
            for record in (person_from_item(customer_id, item) for item in self._table.batch_get(keys))
        }
        return [found[person_id] for person_id in wanted if person_id in found]


class DynamoDbMaskedPeople(OnTable):
    """``MaskedPeopleStore``: the masked stage's reads, fetching ``layout.MASKED_VIEW_ATTRIBUTES``
    only (a ProjectionExpression on every call; its IAM policy allows nothing else)."""

    def get_masked_person(self, customer_id: str, person_id: str) -> PersonRecord | None:
        response = self._table.call(
            "get_item",
            Key=layout.person_key(customer_id, person_id),
            ConsistentRead=self._table.consistent,
            **layout.masked_projection(),
        )
        item = response.get("Item")
        return person_from_item(customer_id, item) if item else None

    def list_masked_people(self, customer_id: str, limit: int, token: str | None) -> Page:
        query = {**layout.people_condition(customer_id), **layout.masked_projection(), "Select": "SPECIFIC_ATTRIBUTES"}
        return query_page(self._table, customer_id, limit, token, query)

    def get_masked_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]:
        wanted = list(dict.fromkeys(person_ids))
        keys = [layout.person_key(customer_id, person_id) for person_id in wanted]
        items = self._table.batch_get(keys, layout.masked_projection())
        found = {record.person_id: record for record in (person_from_item(customer_id, item) for item in items)}
        return [found[person_id] for person_id in wanted if person_id in found]


def query_page(table: DynamoDbTable, customer_id: str, limit: int, token: str | None, query: dict[str, Any]) -> Page:
    """At most ``limit`` people after ``token``, and a ``next`` token only if more follow.

    DynamoDB returns a ``LastEvaluatedKey`` whenever a query stops at its ``Limit``, also on
    the tenant's last item, so a tenant of exactly k x ``limit`` people would end on an
    empty page. The query asks for one item more instead: if it comes, the page ends on the
    item before it (which is not returned, so never decrypted). Its cost is its size in the
    query's read units (rounded up per 4 KB with the whole page: often nothing), and no
    second request. A query that stops at 1 MB before ``Limit`` is resumed to fill the page.
    """
    items: list[dict[str, Any]] = []
    start = layout.page_start(customer_id, token)
    while True:
        response = table.call("query", **query, Limit=limit + 1 - len(items), ConsistentRead=table.consistent, **start)
        items += response.get("Items", [])
        last = response.get("LastEvaluatedKey")
        if len(items) > limit or not last:
            break
        start = {"ExclusiveStartKey": last}
    page = items[:limit]
    next_token = layout.page_token_after(page[-1]) if len(items) > limit else None
    return Page(items=[person_from_item(customer_id, item) for item in page], next_token=next_token)
