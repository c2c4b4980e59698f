"""Items written before format v3 stay readable and writable; sealed metadata cannot be stripped
and re-sealed (issue 21 E).

Old items are planted as the v1 and v2 writers stored them (tests/legacy_items.py), then read
and written through the API over moto. A v3 write replaces the old attributes of what it writes
and leaves the rest: the item then holds both generations, each blob opening by its own format.
"""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import HTTPResponse

from chalicelib.store import layout
from chalicelib.store.records import META_CREATED, META_UPDATED
from tests.integration.conftest import Stack, body_of, send
from tests.integration.test_api import PERSON, create
from tests.legacy_items import moto_wrap, person_item

PERSON_ID = "0123456789abcdef0123456789abcdef"
PATH = f"/customers/acme/people/{PERSON_ID}"
EDITED = "2001-01-01T00:00:00.000Z"


def _plant(stack: Stack, **options: Any) -> dict[str, Any]:
    item = person_item("acme", PERSON_ID, PERSON, moto_wrap(stack.kms), **options)
    stack.dynamodb.put_item(TableName=stack.resources["table_name"], Item=item)
    return item


def _item(stack: Stack, person_id: str = PERSON_ID) -> dict[str, Any]:
    key = layout.person_key("acme", person_id)
    item: dict[str, Any] = stack.dynamodb.get_item(TableName=stack.resources["table_name"], Key=key)["Item"]
    return item


def _put(stack: Stack, item: dict[str, Any]) -> None:
    stack.dynamodb.put_item(TableName=stack.resources["table_name"], Item=item)


def _read(stack: Stack, path: str = PATH) -> HTTPResponse:
    return send(stack.reader, "GET", path)


def _integrity_error(response: HTTPResponse) -> bool:
    return bool(response.status_code == 502 and body_of(response)["code"] == "integrity_error")


@pytest.mark.parametrize("fmt", [1, 2])
def test_given_an_item_written_before_v3_then_both_views_read_it_as_before(stack: Stack, fmt: int) -> None:
    _plant(stack, fmt=fmt)
    read = _read(stack)
    assert read.status_code == 200 and body_of(read)["data"] == PERSON and body_of(read)["version"] == 1
    masked = send(stack.masked, "GET", PATH)
    assert masked.status_code == 200
    assert (body_of(masked)["data"]["email"] is None) == (fmt == 1)  # v1 had no masked view


def test_given_a_v2_item_when_patched_then_it_holds_both_generations_and_reads_whole(stack: Stack) -> None:
    _plant(stack)
    patched = send(stack.writer, "PATCH", PATH, {"email": "new.address@example.org"}, **{"If-Match": '"1"'})
    assert patched.status_code == 200, patched.body
    item = _item(stack)
    # the email in v3 (its old blob gone), the other fields still v2; metadata in v3, creation kept
    assert "fe" in item and "f_email" not in item and "f_name" in item
    assert {"v", "u", "fu", "f__created", "mu", "me"} <= set(item) and not {
        "version",
        "updated_at",
        "f__updated",
    } & set(item)
    assert item["fe"]["B"][0] == 3 and item["f_name"]["B"][0] == 2
    read = body_of(_read(stack))
    assert read["data"] == {**PERSON, "email": "new.address@example.org"} and read["version"] == 2
    masked = body_of(send(stack.masked, "GET", PATH))
    assert masked["data"]["email"] == "n***@example.org" and masked["version"] == 2
    # and again, now without the first write's lost round
    assert send(stack.writer, "PATCH", PATH, {"name": "Renamed"}, **{"If-Match": '"2"'}).status_code == 200
    assert body_of(_read(stack))["data"]["name"] == "Renamed"


def test_given_a_v2_item_when_replaced_then_every_field_is_v3_and_the_creation_time_stays_sealed(stack: Stack) -> None:
    _plant(stack)
    assert send(stack.writer, "PUT", PATH, {**PERSON, "name": "Whole"}).status_code == 200
    item = _item(stack)
    assert not [name for name in item if name.startswith("f_") and name != "f__created"]
    assert body_of(_read(stack))["data"]["name"] == "Whole"
    item["created_at"] = {"S": EDITED}
    _put(stack, item)
    assert _integrity_error(_read(stack))  # the v2 creation metadata still authenticates it


def test_given_a_v1_record_when_first_written_then_it_is_marked_legacy_and_the_mark_is_checked(stack: Stack) -> None:
    _plant(stack, fmt=1)
    assert send(stack.writer, "PATCH", PATH, {"name": "Patched"}).status_code == 200
    item = _item(stack)
    assert "fl" in item and "fc" not in item and "fp" not in item
    assert body_of(_read(stack))["data"]["name"] == "Patched"
    del item["fl"]
    _put(stack, item)
    assert _integrity_error(_read(stack))  # update metadata says legacy, but the mark is gone


def test_given_a_record_created_in_v1_and_written_in_v2_then_its_v2_metadata_is_kept_as_proof(stack: Stack) -> None:
    """The shape a writer cannot tell from a stripped v2 record: it marks it legacy and keeps the
    v2 update metadata, which must open as created=legacy. For this record it does."""
    _plant(stack, created_sealed=False, version=3)
    assert body_of(_read(stack))["version"] == 3
    assert send(stack.writer, "PATCH", PATH, {"dob": "1979-03-01"}, **{"If-Match": '"3"'}).status_code == 200
    item = _item(stack)
    assert {"fl", "fp", "lb"} <= set(item) and "f__updated" not in item
    read = _read(stack)
    assert read.status_code == 200 and body_of(read)["data"]["dob"] == "1979-03-01" and body_of(read)["version"] == 4
    item["lb"] = {"S": item["lb"]["S"].replace("version=3", "version=2")}
    _put(stack, item)
    assert _integrity_error(_read(stack))


def _strip_created_and_edit(stack: Stack, person_id: str) -> None:
    item = _item(stack, person_id)
    created = next(name for name in item if name in (layout.v3_field(META_CREATED), layout.CREATED_META_ATTRIBUTE))
    del item[created]
    for name in (layout.V3_CREATED_AT, layout.CREATED_AT):
        if name in item:
            item[name] = {"S": EDITED}
    _put(stack, item)


def test_given_sealed_creation_metadata_stripped_then_no_later_patch_re_seals_it(stack: Stack) -> None:
    """Issue 21 E: deleting the creation metadata used to make the next PATCH re-seal the record
    as created=legacy, after which an edited created_at was served. Now the writer refuses to
    build on it (integrity_error), and the record never reads with the edited time."""
    person_id = create(stack)
    _strip_created_and_edit(stack, person_id)
    path = f"/customers/acme/people/{person_id}"
    assert _integrity_error(send(stack.reader, "GET", path))
    patched = send(stack.writer, "PATCH", path, {"name": "After"})
    assert _integrity_error(patched)
    assert _integrity_error(send(stack.reader, "GET", path))
    assert _integrity_error(send(stack.writer, "PUT", path, PERSON, **{"If-Match": '"1"'}))


def test_given_a_v2_record_stripped_of_its_creation_metadata_then_it_never_reads_with_an_edited_time(
    stack: Stack,
) -> None:
    """The same attack on a record created in format v2: the writer cannot tell it from a record
    created in v1, so it marks it legacy with the stripped record's own update metadata as proof,
    which says created=sealed: the record reads as an integrity error from then on."""
    _plant(stack)
    _strip_created_and_edit(stack, PERSON_ID)
    assert _integrity_error(_read(stack))
    assert send(stack.writer, "PATCH", PATH, {"name": "After"}).status_code == 200  # blind: it cannot know
    assert _integrity_error(_read(stack))
    assert _integrity_error(send(stack.masked, "GET", PATH)) is False  # the masked view binds no creation time


def test_given_update_metadata_removed_from_a_v3_record_then_integrity_error_for_reader_and_writer(
    stack: Stack,
) -> None:
    person_id = create(stack)
    item = _item(stack, person_id)
    del item[layout.v3_field(META_UPDATED)]
    _put(stack, item)
    path = f"/customers/acme/people/{person_id}"
    assert _integrity_error(send(stack.reader, "GET", path))
    assert _integrity_error(send(stack.writer, "PATCH", path, {"name": "After"}))
