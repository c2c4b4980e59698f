"""People pages over DynamoDB's paging semantics, without moto: a scripted low-level client.

DynamoDB stops a Query at its ``Limit`` and then always returns a ``LastEvaluatedKey``,
also when the tenant has nothing more, and it stops at 1 MB of data before ``Limit``
(here: ``cap`` items). ``query_page`` must neither end on an empty page nor return a
short page while more people follow, and it costs one Query per page when no 1 MB stop
occurs.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.store import layout
from chalicelib.store.dynamodb import DynamoDbTable
from chalicelib.store.people import query_page
from chalicelib.store.person_item import person_item
from chalicelib.store.records import PersonRecord


def person(person_id: str) -> PersonRecord:
    fields = {"name": bytes([3, 2, ord("0")]) + b"ct".ljust(28, b".")}  # a v3 blob as the store sees it
    return PersonRecord("acme", person_id, 1, "t", "t", fields, refs={"0": b"r" * 16})


class DynamoDbLike:
    """``query`` over one tenant's sorted people, with DynamoDB's Limit and 1 MB rules."""

    def __init__(self, count: int, cap: int | None = None) -> None:
        self.items = [person_item(person(f"{n:032x}")) for n in range(1, count + 1)]
        self.cap = cap
        self.limits: list[int] = []

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.limits.append(kwargs["Limit"])
        start = kwargs.get("ExclusiveStartKey")
        after = start[layout.SK]["S"] if start else ""
        rest = [item for item in self.items if item[layout.SK]["S"] > after]
        taken = rest[: min(kwargs["Limit"], self.cap or kwargs["Limit"])]
        stopped = len(taken) == kwargs["Limit"] or (self.cap is not None and len(taken) == self.cap)
        answer: dict[str, Any] = {"Items": taken}
        if taken and stopped:  # DynamoDB: also when nothing follows
            answer["LastEvaluatedKey"] = {k: taken[-1][k] for k in (layout.PK, layout.SK)}
        return answer


def _pages(ddb: DynamoDbLike, limit: int) -> list[int]:
    table = DynamoDbTable(ddb, "pii-vault")
    sizes, token = [], None
    for _ in range(len(ddb.items) + 2):
        page = query_page(table, "acme", limit, token, layout.people_condition("acme"))
        sizes.append(len(page.items))
        token = page.next_token
        if token is None:
            return sizes
    raise AssertionError("pages never ended")


@pytest.mark.parametrize(("count", "limit", "sizes"), [(4, 2, [2, 2]), (5, 2, [2, 2, 1]), (3, 3, [3]), (0, 2, [0])])
def test_given_dynamodbs_limit_rule_then_pages_end_on_the_last_person_with_one_query_each(
    count: int, limit: int, sizes: list[int]
) -> None:
    ddb = DynamoDbLike(count)

    assert _pages(ddb, limit) == sizes
    assert ddb.limits == [limit + 1] * len(sizes)  # one peek item per page, no second request


def test_given_a_query_stopped_at_1_mb_then_the_page_is_filled_by_resuming() -> None:
    ddb = DynamoDbLike(7, cap=2)

    assert _pages(ddb, 3) == [3, 3, 1]
    assert ddb.limits == [4, 2, 4, 2, 4]  # resumed with what the page still needs, plus the peek
