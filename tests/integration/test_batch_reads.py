"""Multi-get and list pages: one BatchGetItem/Query per page, at most one KMS Decrypt per distinct key."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.store import DynamoDbStore
from chalicelib.store.dynamodb import DynamoDbTable
from chalicelib.store.records import META_CREATED
from chalicelib.support.errors import ThrottledError
from infra.local import bootstrap
from tests.integration.conftest import Stack, body_of, send
from tests.integration.test_api import PERSON, create


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
    assert stack.reader_ddb.take() == ["BatchGetItem"]


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
    assert len({item["slots"]["M"][META_CREATED]["B"] for item in cached_stack.scan()}) == 1
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
    slots = {item["pk"]["S"]: item["slots"]["M"][META_CREATED]["B"] for item in tenant_scoped_stack.scan()}
    assert slots["C#acme"] != slots["C#globex"]


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
            return self._client.batch_get_item(RequestItems=RequestItems)
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
        ddb, ids = _seeded(4)
        flaky, sleeps = _Unprocessing(ddb, rounds=2), []
        repo = DynamoDbStore(DynamoDbTable(flaky, "pii-vault", sleep=sleeps.append))
        assert [p.person_id for p in repo.get_people("acme", ids)] == ids
        assert flaky.calls == 3 and len(sleeps) == 2 and sleeps[0] < sleeps[1]


def test_given_keys_that_stay_unprocessed_when_multi_got_then_throttled(aws_env: None) -> None:
    with mock_aws():
        ddb, ids = _seeded(3)
        stingy = _Unprocessing(ddb, rounds=100, served=0)
        repo = DynamoDbStore(DynamoDbTable(stingy, "pii-vault", sleep=lambda _s: None))
        with pytest.raises(ThrottledError):
            repo.get_people("acme", ids)


def _slots_and_blob_slots(stack: Stack) -> tuple[set[str], dict[str, str]]:
    """The item's slot names, and which slot each field blob names (v2 header)."""
    (item,) = (i for i in stack.scan() if i["sk"]["S"].startswith("P#"))
    blobs = {name[2:]: bytes(v["B"]) for name, v in item.items() if name.startswith("f_")}
    return set(item["slots"]["M"]), {f: b[3 : 3 + b[2]].decode() for f, b in blobs.items()}


def test_given_writes_then_each_wrapped_key_is_stored_once_under_a_slot_its_blobs_name(cached_stack: Stack) -> None:
    person_id = create(cached_stack)
    path = f"/customers/acme/people/{person_id}"
    slots, named = _slots_and_blob_slots(cached_stack)
    assert slots == {META_CREATED} and set(named.values()) == {META_CREATED}

    assert (
        send(cached_stack.writer, "PATCH", path, {"email": "new@example.com"}, **{"If-Match": '"1"'}).status_code == 200
    )
    slots, named = _slots_and_blob_slots(cached_stack)
    assert slots == {META_CREATED, "email"}
    assert named["email"] == named["_updated"] == "email" and named["name"] == META_CREATED

    assert send(cached_stack.writer, "PUT", path, PERSON, **{"If-Match": '"2"'}).status_code == 200
    slots, named = _slots_and_blob_slots(cached_stack)
    assert slots == {META_CREATED, "0"} and named["_created"] == META_CREATED
    assert {slot for field, slot in named.items() if field != "_created"} == {"0"}
    got = send(cached_stack.reader, "GET", path)
    assert got.status_code == 200 and body_of(got)["data"] == PERSON


def test_given_an_item_with_an_updated_slot_from_before_when_patched_then_the_slot_goes(cached_stack: Stack) -> None:
    person_id = create(cached_stack)
    (item,) = (i for i in cached_stack.scan() if i["sk"]["S"].startswith("P#"))
    item["slots"]["M"]["_updated"] = item["slots"]["M"][META_CREATED]  # as earlier writers left it
    cached_stack.dynamodb.put_item(TableName=cached_stack.resources["table_name"], Item=item)
    path = f"/customers/acme/people/{person_id}"
    assert send(cached_stack.writer, "PATCH", path, {"name": "Ann"}, **{"If-Match": '"1"'}).status_code == 200
    slots, _ = _slots_and_blob_slots(cached_stack)
    assert slots == {META_CREATED, "name"}
    assert body_of(send(cached_stack.reader, "GET", path))["data"]["name"] == "Ann"
