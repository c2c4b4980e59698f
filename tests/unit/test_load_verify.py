"""The load script's verification must catch every way a write can be lost."""

from __future__ import annotations

import pytest

from tools.load import LoadError, Record, require_loopback, verify

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
        ([_record("a", 2)], {("t", "a"): _item(1)}, {"a": (200, {"version": 1, "data": DATA})}, "differ from the last acknowledged"),
        ([_record("a")], {("t", "a"): _item(1)}, {"a": (200, {"version": 1, "data": NEWER})}, "differ from the last acknowledged"),
        ([_record("a")], {("t", "a"): _item(1)}, {"a": (502, None)}, "reader answered 502"),
        ([_record("a", live=False)], {("t", "a"): _item(1)}, {"a": (200, {"version": 1, "data": DATA})}, "still in the table"),
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

    result = verify([kept, gone], items, _reader({"a": (200, {"version": 1, "data": DATA})}))

    assert (result.uncertain, result.lost, result.orphans) == (2, [], 1)


@pytest.mark.parametrize("url", ["http://10.0.0.1:8001", "https://example.com", "http://pii-vault.internal:80"])
def test_given_a_non_loopback_url_when_checked_then_it_is_refused(url: str) -> None:
    with pytest.raises(LoadError, match="only loopback"):
        require_loopback(url)


def test_given_loopback_urls_when_checked_then_they_are_accepted() -> None:
    assert require_loopback("http://127.0.0.1:8001/") == "http://127.0.0.1:8001"
    assert require_loopback("http://localhost:8002") == "http://localhost:8002"
    assert require_loopback("http://[::1]:8002") == "http://[::1]:8002"
