"""The load script's verification must catch every way a write can be lost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
import requests

from chalicelib.store import layout
from tools.load import Client, LoadError, Report, require_loopback
from tools.load_check import (
    Key,
    LivePerson,
    Marker,
    ReadPerson,
    Record,
    Verification,
    person_of,
    verify,
    verify_masked,
    verify_search,
)

DATA = {"name": "Ada", "surname": "Lovelace"}
NEWER = {"name": "Ada", "surname": "King"}


def _item(version: int) -> dict[str, Any]:
    return {"version": {"N": str(version)}}


def _reader(answers: Mapping[str, tuple[int, dict[str, Any] | None]]) -> ReadPerson:
    return lambda key: answers[key[1]]


def _record(
    person_id: str,
    version: int = 1,
    data: dict[str, Any] = DATA,
    live: bool = True,
    uncertain: list[tuple[bool, int, dict[str, Any]]] | None = None,
) -> Record:
    return Record("t", person_id, version, dict(data), live=live, uncertain=uncertain)


def test_given_every_acknowledged_write_stored_and_decrypting_when_verified_then_nothing_is_lost() -> None:
    records = [_record("a", 2), _record("b", live=False)]
    items = {("t", "a"): _item(2)}
    read = _reader({"a": (200, {"version": 2, "data": DATA})})

    result = verify(records, items, read)

    assert (result.present, result.gone, result.lost) == (1, 1, [])


@pytest.mark.parametrize(
    "records, items, answers, problem",
    [
        ([_record("a")], {}, {}, "acknowledged write missing"),
        (
            [_record("a", 2)],
            {("t", "a"): _item(1)},
            {"a": (200, {"version": 1, "data": DATA})},
            "differ from the last acknowledged",
        ),
        (
            [_record("a")],
            {("t", "a"): _item(1)},
            {"a": (200, {"version": 1, "data": NEWER})},
            "differ from the last acknowledged",
        ),
        ([_record("a")], {("t", "a"): _item(1)}, {"a": (502, None)}, "reader answered 502"),
        (
            [_record("a", live=False)],
            {("t", "a"): _item(1)},
            {"a": (200, {"version": 1, "data": DATA})},
            "still in the table",
        ),
        (
            [_record("a", uncertain=[(True, 1, DATA), (True, 2, NEWER)])],
            {},
            {},
            "neither the old nor the new state",
        ),
    ],
)
def test_given_a_lost_write_when_verified_then_it_is_reported(
    records: list[Record],
    items: dict[Key, dict[str, Any]],
    answers: dict[str, tuple[int, dict[str, Any] | None]],
    problem: str,
) -> None:
    result = verify(records, items, _reader(answers))

    assert len(result.lost) == 1
    assert problem in result.lost[0]


def test_given_an_unanswered_delete_when_either_outcome_is_stored_then_it_is_uncertain_not_lost() -> None:
    states = [(True, 1, DATA), (False, 0, {})]
    kept, gone = _record("a", uncertain=states), _record("b", uncertain=states)
    items = {("t", "a"): _item(1), ("t", "x"): _item(1)}

    answers = {"a": (200, {"version": 1, "data": DATA}), "x": (200, {"version": 1, "data": NEWER})}
    result = verify([kept, gone], items, _reader(answers), unanswered_creates=1)

    assert (result.uncertain, result.lost, result.orphans) == (2, [], 1)


def test_given_more_stored_people_than_unanswered_creates_when_verified_then_the_extra_is_reported() -> None:
    items = {("t", "x"): _item(1), ("t", "y"): _item(1)}
    people = _reader({"x": (200, {"version": 1, "data": DATA}), "y": (200, {"version": 1, "data": NEWER})})

    assert verify([], items, people, unanswered_creates=2).lost == []
    (problem,) = verify([], items, people, unanswered_creates=1).lost
    assert "2 stored people but only 1 creates without an answer" in problem


def test_given_a_reader_that_never_answers_when_verified_then_the_record_is_not_counted_present() -> None:
    result = verify([_record("a")], {("t", "a"): _item(1)}, _reader({"a": (0, None)}))

    assert result.present == 0
    assert result.lost == ["t/a: stored but the reader did not answer"]


class _Refused:
    """A session whose every request ends like a reset connection."""

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        raise requests.ConnectionError("Connection reset by peer")


def test_given_writes_without_an_answer_then_they_are_counted_unanswered_and_their_records_uncertain() -> None:
    client = Client(0, "http://127.0.0.1:1", "http://127.0.0.1:2", ["t"], seed=1)
    client.session = _Refused()  # type: ignore[assignment]  # a stand-in for requests.Session: request() only
    patched, deleted = _record("a"), _record("b")
    client.live = [patched]
    client.patch()
    client.live = [deleted]
    client.delete()
    client.create()

    result = client.result
    assert result.unanswered == Counter({"create": 1, "patch": 1, "delete": 1})
    assert result.records == [] and client.live == []
    assert patched.uncertain is not None and (True, 1, DATA) in patched.uncertain
    assert deleted.uncertain == [(True, 1, DATA), (False, 0, {})]
    assert result.statuses == Counter({(op, "ConnectionError"): 1 for op in ("create", "patch", "delete")})

    items = {("t", "a"): _item(1), ("t", "b"): _item(1)}
    answers = {"a": (200, {"version": 1, "data": DATA}), "b": (200, {"version": 1, "data": DATA})}
    verification = verify([patched, deleted], items, _reader(answers), result.unanswered["create"])
    report = Report(
        1,
        3,
        1.0,
        Counter(),
        result.statuses,
        {op: [] for op in ("create", "patch", "read", "delete")},
        0,
        result.unanswered,
        verification,
    )
    assert (verification.uncertain, verification.present, verification.lost) == (2, 0, [])
    assert report.server_errors == 3 and report.lost == 0
    text = report.render()
    assert "unanswered writes (no response or 5xx; either outcome accepted): 3 (create 1, patch 1, delete 1)" in text
    assert "2 records after an unanswered patch or delete, 0 of 1 unanswered creates stored" in text


def test_given_table_items_then_only_person_keys_name_a_person() -> None:
    def item(sort_key: str) -> dict[str, Any]:
        return {layout.PK: {"S": layout.partition_key("t")}, layout.SK: {"S": sort_key}}

    assert person_of(item(layout.person_sort_key("abc"))) == ("t", "abc")
    assert person_of(item(layout.secret_head_key("hook"))) is None


@pytest.mark.parametrize("url", ["http://10.0.0.1:8001", "https://example.com", "http://pii-vault.internal:80"])
def test_given_a_non_loopback_url_when_checked_then_it_is_refused(url: str) -> None:
    with pytest.raises(LoadError, match="only loopback"):
        require_loopback(url)


def test_given_loopback_urls_when_checked_then_they_are_accepted() -> None:
    assert require_loopback("http://127.0.0.1:8001/") == "http://127.0.0.1:8001"
    assert require_loopback("http://localhost:8002") == "http://localhost:8002"
    assert require_loopback("http://[::1]:8002") == "http://[::1]:8002"


def test_given_an_item_that_does_not_read_as_a_person_then_it_is_reported_even_if_a_create_went_unanswered() -> None:
    # A stub: e.g. a late beacon write that created an item after the person's delete.
    result = verify([], {("t", "x"): _item(1)}, _reader({"x": (500, None)}), unanswered_creates=1)

    assert result.lost == ["t/x: an item without its person (the reader answered 500)"]


def _live(*people: tuple[str, dict[str, Any]]) -> Verification:
    return Verification(live=[LivePerson("t", person_id, 2, dict(data)) for person_id, data in people])


PERSON: dict[str, Any] = {
    "name": "Ada",
    "surname": "Lovelace",
    "email": "ada@example.org",
    "dob": "1815-12-10",
    "address": {"line1": "1 St James's Sq", "city": "London", "postal_code": "SW1Y 4JU", "country": "GB"},
}
MASKED = {
    "name": "A.",
    "surname": "L.",
    "email": "a***@example.org",
    "dob": "1815",
    "address": {"city": "London", "country": "GB"},
}


def test_given_masked_views_when_verified_then_each_must_be_the_masking_of_the_full_view_at_its_version() -> None:
    result = _live(("a", PERSON), ("b", PERSON), ("c", PERSON), ("d", PERSON))
    answers = {
        "a": (200, {"version": 2, "data": MASKED}),
        "b": (200, {"version": 1, "data": MASKED}),  # an older write's view
        "c": (200, {"version": 2, "data": {**MASKED, "email": "z***@example.org"}}),  # not this write's
        "d": (404, None),  # no view for a live person
    }

    verify_masked(result, _reader(answers))

    assert result.masked_checked == 1
    assert result.lost == [
        "t/b: masked view at version 1, the person at 2",
        "t/c: masked view differs from the masking of version 2",
        "t/d: the masked stage answered 404 for a live person",
    ]


def test_given_an_indexer_that_lags_when_searched_then_a_person_found_later_within_the_bound_is_not_lost() -> None:
    result = _live(("a", PERSON), ("b", {**PERSON, "email": "b@example.org"}))
    now = [0.0]
    found_after = {"a": 0.0, "b": 3.0}  # b's beacon arrives 3 s after the run

    owner = {"ada@example.org": "a", "b@example.org": "b"}

    def search(customer_id: str, email: str) -> list[str]:
        person_id = owner[email]
        return [person_id] if now[0] >= found_after[person_id] else []

    verify_search(result, search, lag_s=10, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))

    assert (result.found_by_search, result.lost) == (2, [])
    assert 3.0 <= result.index_lag_s < 4.0


def test_given_a_person_search_never_finds_when_the_lag_bound_passes_then_it_is_reported() -> None:
    result = _live(("a", PERSON))
    now = [0.0]

    verify_search(
        result, lambda c, e: [], lag_s=2, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )

    assert result.found_by_search == 0
    assert result.index_lag_s > 2
    assert result.lost == [f"t/a: search by email does not find it {result.index_lag_s:.0f}s after the run"]


def test_given_a_marker_when_search_finds_it_then_everyone_is_searched_once_and_the_marker_removed() -> None:
    result = _live(("a", PERSON))
    now, removed, searched = [0.0], [], []
    indexed_at = 8.0  # the indexer reaches the marker 8 s after the run (polled every 2 s), and "a" long before

    def search(customer_id: str, email: str) -> list[str]:
        searched.append(email)
        if email == "marker@example.org":
            return ["m"] if now[0] >= indexed_at else []
        return ["a"]

    marker = lambda: Marker("t-marker", "m", "marker@example.org", lambda: removed.append("m"))  # noqa: E731
    verify_search(result, search, marker=marker, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))

    assert (result.found_by_search, result.lost, removed) == (1, [], ["m"])
    assert result.index_lag_s == indexed_at
    assert searched.count(PERSON["email"]) == 1  # nobody searched while waiting: the indexer gets moto


def test_given_a_marker_the_writer_refuses_then_search_is_reported_unchecked() -> None:
    result = _live(("a", PERSON))

    def refused() -> Marker:
        raise RuntimeError("the search marker was not written (status 503)")

    verify_search(result, lambda c, e: ["a"], marker=refused)

    assert result.found_by_search is None
    assert result.lost == ["search not checked: the search marker was not written (status 503)"]
