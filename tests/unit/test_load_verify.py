"""The load script's verification must catch every way a write can be lost."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from chalicelib.store import layout
from tools.load import Client, LoadError, Record, Report, person_of, require_loopback, verify

DATA = {"name": "Ada", "surname": "Lovelace"}
NEWER = {"name": "Ada", "surname": "King"}


def _item(version: int) -> dict:
    return {"version": {"N": str(version)}}


def _reader(answers: dict[str, tuple[int, dict | None]]):
    return lambda record: answers[record.person_id]


def _record(person_id: str, version: int = 1, data: dict = DATA, live: bool = True, uncertain=None) -> Record:
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
def test_given_a_lost_write_when_verified_then_it_is_reported(records, items, answers, problem) -> None:
    result = verify(records, items, _reader(answers))

    assert len(result.lost) == 1
    assert problem in result.lost[0]


def test_given_an_unanswered_delete_when_either_outcome_is_stored_then_it_is_uncertain_not_lost() -> None:
    states = [(True, 1, DATA), (False, 0, {})]
    kept, gone = _record("a", uncertain=states), _record("b", uncertain=states)
    items = {("t", "a"): _item(1), ("t", "x"): _item(1)}

    result = verify([kept, gone], items, _reader({"a": (200, {"version": 1, "data": DATA})}), unanswered_creates=1)

    assert (result.uncertain, result.lost, result.orphans) == (2, [], 1)


def test_given_more_stored_people_than_unanswered_creates_when_verified_then_the_extra_is_reported() -> None:
    items = {("t", "x"): _item(1), ("t", "y"): _item(1)}

    assert verify([], items, _reader({}), unanswered_creates=2).lost == []
    (problem,) = verify([], items, _reader({}), unanswered_creates=1).lost
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
    client.session = _Refused()  # type: ignore[assignment]
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
    def item(sort_key: str) -> dict:
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
