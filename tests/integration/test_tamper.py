"""An attacker with table write access but no KMS rights: every edit is detected on read.

Each test alters the stored items directly with the raw DynamoDB client, then reads
through the reader API and expects the distinct ``integrity_error``, never wrong data.
"""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Stack, body_of, send
from tests.integration.test_api import PERSON, create


def _item(stack: Stack, customer: str, sort_key: str) -> dict[str, Any]:
    key = {"pk": {"S": f"C#{customer}"}, "sk": {"S": sort_key}}
    return stack.dynamodb.get_item(TableName=stack.resources["table_name"], Key=key)["Item"]


def _put(stack: Stack, item: dict[str, Any]) -> None:
    stack.dynamodb.put_item(TableName=stack.resources["table_name"], Item=item)


def _assert_integrity_error(response: Any) -> None:
    assert response.status_code == 502, response.body
    assert body_of(response)["code"] == "integrity_error"
    for value in ("Mirabelle", "Quenneville", "example.org"):
        assert value not in response.body.decode()


def test_given_an_email_swapped_between_two_people_when_read_then_integrity_error(stack: Stack) -> None:
    first, second = create(stack), create(stack, person={**PERSON, "email": "other@example.org"})
    a, b = _item(stack, "acme", f"P#{first}"), _item(stack, "acme", f"P#{second}")
    a["f_email"], a["slots"] = b["f_email"], b["slots"]
    _put(stack, a)
    _assert_integrity_error(send(stack.reader, "GET", f"/customers/acme/people/{first}?fields=email"))


def test_given_a_whole_item_copied_to_another_tenant_when_read_there_then_integrity_error(stack: Stack) -> None:
    person_id = create(stack)
    item = _item(stack, "acme", f"P#{person_id}")
    item["pk"] = {"S": "C#globex"}
    _put(stack, item)
    _assert_integrity_error(send(stack.reader, "GET", f"/customers/globex/people/{person_id}"))


def test_given_a_bit_flipped_in_a_field_when_read_then_integrity_error(stack: Stack) -> None:
    person_id = create(stack)
    item = _item(stack, "acme", f"P#{person_id}")
    blob = bytearray(item["f_name"]["B"])
    blob[-1] ^= 0x80
    item["f_name"] = {"B": bytes(blob)}
    _put(stack, item)
    _assert_integrity_error(send(stack.reader, "GET", f"/customers/acme/people/{person_id}"))


def test_given_a_truncated_wrapped_key_when_read_then_integrity_error(stack: Stack) -> None:
    person_id = create(stack)
    item = _item(stack, "acme", f"P#{person_id}")
    item["slots"]["M"]["0"] = {"B": item["slots"]["M"]["0"]["B"][:-8]}
    _put(stack, item)
    _assert_integrity_error(send(stack.reader, "GET", f"/customers/acme/people/{person_id}"))


def test_given_an_old_secret_version_replayed_as_latest_when_read_then_integrity_error(stack: Stack) -> None:
    for value in ("whsec_old_value", "whsec_new_value"):
        send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": value})
    old = _item(stack, "acme", "S#hook#V#0000000001")
    new = _item(stack, "acme", "S#hook#V#0000000002")
    new["f_value"], new["slots"], new["version"] = old["f_value"], old["slots"], old["version"]
    _put(stack, new)
    response = send(stack.reader, "GET", "/customers/acme/secrets/hook")
    assert response.status_code == 502 and body_of(response)["code"] == "integrity_error"
    assert "whsec_old_value" not in response.body.decode()
