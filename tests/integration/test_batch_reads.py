"""Multi-get and list pages: one BatchGetItem/Query per page, at most one KMS Decrypt per distinct key."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.store import DynamoDbStore, layout
from chalicelib.store.dynamodb import DynamoDbTable
from chalicelib.store.records import CREATE_SLOT
from chalicelib.support.errors import ThrottledError
from infra.local import bootstrap
from tests.integration.conftest import Stack, body_of, send, stage_client
from tests.integration.test_api import PERSON, create

KC = layout.v3_key(CREATE_SLOT)


def test_given_ids_when_multi_got_then_one_batch_get_and_items_in_the_order_asked_with_missing_listed(
    stack: Stack,
) -> None:
    ids = [create(stack) for _ in range(3)]
    absent = "0" * 32
    stack.reader_ddb.take()
    response = send(stack.reader, "GET", f"/customers/acme/people?ids={ids[2]},{absent},{ids[0]}&fields=email")
    body = body_of(response)
    assert response.status_code == 200
    assert [item["id"] for item in body["items"]] == [ids[2], ids[0]]
    assert all(item["data"] == {"email": PERSON["email"]} for item in body["items"])
    assert (body["missing"], body["next"]) == ([absent], None)
    # one BatchGetItem of the records; with caches off, one key-table GetItem per distinct data key
    assert stack.reader_ddb.take() == ["BatchGetItem", "GetItem", "GetItem"]


def test_given_records_of_another_tenant_when_multi_got_then_they_are_missing(stack: Stack) -> None:
    other = create(stack, customer="globex")
    body = body_of(send(stack.reader, "GET", f"/customers/acme/people?ids={other}"))
    assert (body["items"], body["missing"]) == ([], [other])


def test_given_caches_off_when_a_page_is_read_then_one_decrypt_per_record_key_never_per_field(stack: Stack) -> None:
    ids = [create(stack) for _ in range(4)]
    stack.reader_kms.take()
    send(stack.reader, "GET", f"/customers/acme/people?ids={','.join(ids)}")
    assert stack.reader_kms.take() == ["Decrypt"] * 4
    send(stack.reader, "GET", "/customers/acme/people?limit=4")
    assert stack.reader_kms.take() == ["Decrypt"] * 4


def test_given_records_sharing_a_writer_key_when_a_page_is_read_then_one_decrypt_per_page(
    cached_stack: Stack,
) -> None:
    ids = [create(cached_stack) for _ in range(6)]
    assert cached_stack.writer_kms.take() == ["Encrypt"] * 2  # one wrapped key per view for all six
    body = body_of(send(cached_stack.reader, "GET", f"/customers/acme/people?ids={','.join(ids)}"))
    assert len(body["items"]) == 6 and all(item["data"] == PERSON for item in body["items"])
    assert cached_stack.reader_kms.take() == ["Decrypt"]
    # Repeat reads (list, single, multi-get) are served by the reader cache.
    send(cached_stack.reader, "GET", "/customers/acme/people?limit=6")
    send(cached_stack.reader, "GET", f"/customers/acme/people/{ids[0]}")
    send(cached_stack.reader, "GET", f"/customers/acme/people?ids={ids[1]}")
    assert cached_stack.reader_kms.take() == []


def test_given_pool_keys_when_tenants_write_then_one_wrapped_key_and_each_record_opens_only_as_itself(
    cached_stack: Stack,
) -> None:
    ids = {customer: create(cached_stack, customer=customer) for customer in ("acme", "globex", "initech")}
    assert cached_stack.writer_kms.take() == ["Encrypt"] * 2  # one pool key per view per warm writer, any tenant
    assert len({item[KC]["B"] for item in cached_stack.scan()}) == 1  # one reference: one key, filed once
    for customer, person_id in ids.items():
        assert send(cached_stack.reader, "GET", f"/customers/{customer}/people/{person_id}").status_code == 200
    # the tenant is bound in every field's AAD: the same item under another tenant fails
    acme = next(item for item in cached_stack.scan() if item["pk"]["S"] == "C#acme")
    cached_stack.dynamodb.put_item(
        TableName=cached_stack.resources["table_name"], Item={**acme, "pk": {"S": "C#globex"}}
    )
    moved = send(cached_stack.reader, "GET", f"/customers/globex/people/{ids['acme']}")
    assert (moved.status_code, body_of(moved)["code"]) == (502, "integrity_error")


def test_given_tenant_scoped_keys_when_another_tenant_writes_then_it_gets_its_own_wrapped_key(
    tenant_scoped_stack: Stack,
) -> None:
    create(tenant_scoped_stack, customer="acme")
    create(tenant_scoped_stack, customer="globex")
    create(tenant_scoped_stack, customer="acme")
    assert tenant_scoped_stack.writer_kms.take() == ["Encrypt"] * 4  # per tenant, one per view
    refs = {item["pk"]["S"]: item[KC]["B"] for item in tenant_scoped_stack.scan()}
    assert refs["C#acme"] != refs["C#globex"]


def test_given_caches_on_then_a_patched_record_still_reads_back_and_the_writer_never_decrypts(
    cached_stack: Stack,
) -> None:
    person_id = create(cached_stack)
    send(cached_stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"name": "Mira"})
    data = body_of(send(cached_stack.reader, "GET", f"/customers/acme/people/{person_id}"))["data"]
    assert data == {**PERSON, "name": "Mira"}
    assert set(cached_stack.writer_kms.take()) == {"Encrypt"}


@pytest.mark.parametrize(
    "query",
    [
        "ids=",
        "ids=" + ",".join(f"{n:032x}" for n in range(101)),
        "ids=NOT-AN-ID",
        "ids=" + "a" * 32 + "&next=abc",
        "ids=" + "a" * 32 + "&limit=5",
    ],
)
def test_given_bad_ids_when_multi_got_then_400_naming_ids(stack: Stack, query: str) -> None:
    response = send(stack.reader, "GET", f"/customers/acme/people?{query}")
    assert response.status_code == 400 and body_of(response)["message"].startswith("ids")


class _Unprocessing:
    """A DynamoDB client whose BatchGetItem serves only ``served`` keys per call, ``rounds`` times."""

    def __init__(self, client: Any, rounds: int, served: int = 1) -> None:
        self._client, self.rounds, self.served, self.calls = client, rounds, served, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        ((table, request),) = RequestItems.items()
        if self.calls > self.rounds:
            answer: dict[str, Any] = self._client.batch_get_item(RequestItems=RequestItems)
            return answer
        served, rest = request["Keys"][: self.served], request["Keys"][self.served :]
        responses = (
            self._client.batch_get_item(RequestItems={table: {**request, "Keys": served}})["Responses"]
            if served
            else {}
        )
        return {"Responses": responses, "UnprocessedKeys": {table: {**request, "Keys": rest}} if rest else {}}


def _seeded(count: int) -> tuple[Any, list[str]]:
    kms, ddb = boto3.client("kms"), boto3.client("dynamodb")
    bootstrap(kms, ddb)
    ids = [f"{n:032x}" for n in range(1, count + 1)]
    for person_id in ids:
        ddb.put_item(
            TableName="pii-vault",
            Item={
                "pk": {"S": "C#acme"},
                "sk": {"S": f"P#{person_id}"},
                "version": {"N": "1"},
                "created_at": {"S": "t"},
                "updated_at": {"S": "t"},
                "slots": {"M": {"0": {"B": b"w"}}},
                "f_name": {"B": b"ct"},
            },
        )
    return ddb, ids


def test_given_unprocessed_keys_when_multi_got_then_they_are_retried_with_backoff(aws_env: None) -> None:
    with mock_aws():
        _, ids = _seeded(4)
        flaky = _Unprocessing(stage_client("reader", "dynamodb"), rounds=2)
        sleeps: list[float] = []
        repo = DynamoDbStore(DynamoDbTable(flaky, "pii-vault", sleep=sleeps.append))
        assert [p.person_id for p in repo.get_people("acme", ids)] == ids
        assert flaky.calls == 3 and len(sleeps) == 2 and sleeps[0] < sleeps[1]


def test_given_keys_that_stay_unprocessed_when_multi_got_then_throttled(aws_env: None) -> None:
    with mock_aws():
        _, ids = _seeded(3)
        stingy = _Unprocessing(stage_client("reader", "dynamodb"), rounds=100, served=0)
        repo = DynamoDbStore(DynamoDbTable(stingy, "pii-vault", sleep=lambda _s: None))
        with pytest.raises(ThrottledError):
            repo.get_people("acme", ids)


def _slots_and_blob_slots(stack: Stack) -> tuple[set[str], dict[str, str]]:
    """The item's key slots (its reference attributes), and which slot each field blob names (v3 header)."""
    (item,) = (i for i in stack.scan() if i["sk"]["S"].startswith("P#"))
    names = {**layout.V3_FIELD_ATTRIBUTES}
    blobs = {names[name]: bytes(v["B"]) for name, v in item.items() if name in names}
    slots = {slot for slot in layout.V3_FULL_SLOTS if layout.v3_key(slot) in item}
    return slots, {f: b[2:3].decode() for f, b in blobs.items()}


def test_given_writes_then_each_data_key_is_named_once_under_a_slot_its_blobs_name(cached_stack: Stack) -> None:
    person_id = create(cached_stack)
    path = f"/customers/acme/people/{person_id}"
    slots, named = _slots_and_blob_slots(cached_stack)
    assert slots == {CREATE_SLOT} and set(named.values()) == {CREATE_SLOT}

    assert (
        send(cached_stack.writer, "PATCH", path, {"email": "new@example.com"}, **{"If-Match": '"1"'}).status_code == 200
    )
    slots, named = _slots_and_blob_slots(cached_stack)
    assert slots == {CREATE_SLOT, "e"}
    assert named["email"] == named["_updated"] == "e" and named["name"] == CREATE_SLOT

    assert send(cached_stack.writer, "PUT", path, PERSON, **{"If-Match": '"2"'}).status_code == 200
    slots, named = _slots_and_blob_slots(cached_stack)
    assert slots == {CREATE_SLOT, "0"} and named["_created"] == CREATE_SLOT
    assert {slot for field, slot in named.items() if field != "_created"} == {"0"}
    got = send(cached_stack.reader, "GET", path)
    assert got.status_code == 200 and body_of(got)["data"] == PERSON
    # The item holds references only; each wrapped key lives once in the key table.
    (item,) = (i for i in cached_stack.scan() if i["sk"]["S"].startswith("P#"))
    assert not {"slots", "kms_key"} & set(item)
